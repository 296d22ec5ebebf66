package graph

import "syscall"

// dropPages drops the whole pages b covers from memory. Best effort: a
// failure only leaves the pages resident.
func dropPages(b []byte) {
	_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
}
