// Package sweeptest trims fixture sweeps in tests run with -short.
//
// The full suite proves every rule on every fixture; the inner loop
// (`go test -short ./...`) keeps a spread of them, so each sweep still
// runs end to end on a few models of different kinds.
package sweeptest

import "testing"

// ShortCount is how many items a sweep keeps under -short.
const ShortCount = 3

// Pick returns items unchanged, or under -short ShortCount of them
// spread evenly over the list (first and last included), so a sweep over
// a manifest ordered by kind still meets several kinds.
func Pick[T any](items []T) []T {
	if !testing.Short() || len(items) <= ShortCount {
		return items
	}
	out := make([]T, 0, ShortCount)
	for i := range ShortCount {
		out = append(out, items[i*(len(items)-1)/(ShortCount-1)])
	}
	return out
}
