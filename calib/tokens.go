package calib

import (
	"fmt"

	"github.com/pare-dev/pare/tensor"
)

// DefaultTokenRange is the interval token weights are normalised into
// before rescaling to mean 1 (RSQ's choice: no token is ignored, the
// least attended weighs 200 times less than the most).
var DefaultTokenRange = [2]float64{0.005, 1}

// AttentionConcentration scores tokens by how much attention they
// receive: for each of batch samples, the column sums of the softmax
// probabilities over heads and queries, one score per key token. probs is
// [batch, heads, queries, keys], or [batch·heads, queries, keys] as
// exported attention often reshapes it.
func AttentionConcentration(probs tensor.Dense, batch int) ([][]float64, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("calib: tokens: batch %d", batch)
	}
	var heads, queries, keys int
	switch len(probs.Shape) {
	case 4:
		if int(probs.Shape[0]) != batch {
			return nil, fmt.Errorf("calib: tokens: attention %v for %d samples", probs.Shape, batch)
		}
		heads, queries, keys = int(probs.Shape[1]), int(probs.Shape[2]), int(probs.Shape[3])
	case 3:
		if probs.Shape[0]%int64(batch) != 0 {
			return nil, fmt.Errorf("calib: tokens: attention %v for %d samples", probs.Shape, batch)
		}
		heads, queries, keys = int(probs.Shape[0])/batch, int(probs.Shape[1]), int(probs.Shape[2])
	default:
		return nil, fmt.Errorf("calib: tokens: attention of rank %d (want 3 or 4)", len(probs.Shape))
	}
	v, err := probs.Float64s()
	if err != nil {
		return nil, fmt.Errorf("calib: tokens: %w", err)
	}
	if len(v) != batch*heads*queries*keys {
		return nil, fmt.Errorf("calib: tokens: attention %v has %d values", probs.Shape, len(v))
	}
	out := make([][]float64, batch)
	for b := range batch {
		s := make([]float64, keys)
		base := b * heads * queries * keys
		for r := range heads * queries {
			row := v[base+r*keys : base+(r+1)*keys]
			for k, p := range row {
				s[k] += p
			}
		}
		out[b] = s
	}
	return out, nil
}

// NormalizeTokenWeights maps scores min–max onto [lo, hi] and rescales
// them to mean 1, so that weighting a Hessian by them keeps its scale.
// Equal scores (or none) give uniform weights.
func NormalizeTokenWeights(scores []float64, lo, hi float64) []float64 {
	out := make([]float64, len(scores))
	if len(scores) == 0 {
		return out
	}
	mn, mx := scores[0], scores[0]
	for _, s := range scores {
		mn, mx = min(mn, s), max(mx, s)
	}
	if !(mx > mn) {
		for i := range out {
			out[i] = 1
		}
		return out
	}
	sum := 0.0
	for i, s := range scores {
		out[i] = lo + (hi-lo)*(s-mn)/(mx-mn)
		sum += out[i]
	}
	mean := sum / float64(len(out))
	for i := range out {
		out[i] /= mean
	}
	return out
}
