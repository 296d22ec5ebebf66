//go:build unix && !linux

package graph

// dropPages leaves the pages resident: the Go standard library has no
// madvise outside Linux. The map is read-only and file-backed, so the
// kernel can still reclaim its pages under memory pressure.
func dropPages([]byte) {}
