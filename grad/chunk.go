package grad

import (
	"slices"

	ptensor "github.com/pare-dev/pare/tensor"
)

// ChunkRows is the samples per gradient pass for batches of batch
// rows of the given input shape: the largest divisor of batch within
// 256 token positions for a token-id input, 8 samples otherwise. The
// float64 tape of a pass grows with its rows; on the trained decoder
// (batches of 32 windows of 64 tokens) chunks of 4 windows took the
// peak from 1.3 GB to 0.25 GB at no cost in CPU (docs/BENCHMARKS.md).
// Objective.Step runs a batch of several chunks chunk by chunk and
// averages their gradients.
func ChunkRows(batch int, shape []int64, tokens bool) int {
	limit := 8
	if tokens && len(shape) >= 2 {
		per := 1
		for _, d := range shape[1:] {
			per *= int(d)
		}
		limit = max(1, 256/max(per, 1))
	}
	for c := min(batch, limit); c > 1; c-- {
		if batch%c == 0 {
			return c
		}
	}
	return 1
}

// ChunkShapes are the shapes of a batch's inputs with chunk rows, for
// BuildInputs.
func ChunkShapes(batch map[string]ptensor.Dense, chunk int) map[string][]int64 {
	out := map[string][]int64{}
	for name, d := range batch {
		s := slices.Clone(d.Shape)
		if len(s) > 0 {
			s[0] = int64(chunk)
		}
		out[name] = s
	}
	return out
}
