package quant

import (
	"math"
	"math/rand/v2"
)

// Hadamard returns the normalised Sylvester Hadamard matrix of order n
// (a power of two): H[i][j] = (−1)^popcount(i&j)/√n, so HHᵀ = I.
func Hadamard(n int) Matrix {
	h := NewMatrix(n, n)
	s := float32(1 / math.Sqrt(float64(n)))
	for i := range n {
		for j := range n {
			if popcount(i&j)%2 == 0 {
				h.Data[i*n+j] = s
			} else {
				h.Data[i*n+j] = -s
			}
		}
	}
	return h
}

func popcount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}

// RandomHadamard returns D·H for the normalised Hadamard H of order n (a
// power of two) and a random ±1 diagonal D drawn from rng: orthogonal,
// and it spreads any one coordinate evenly over all n.
func RandomHadamard(n int, rng *rand.Rand) Matrix {
	h := Hadamard(n)
	for i := range n {
		if rng.IntN(2) == 1 {
			for j := range n {
				h.Data[i*n+j] = -h.Data[i*n+j]
			}
		}
	}
	return h
}

// rotationBlock returns the largest power of two that divides n, at most
// limit; 1 means n is odd and cannot be rotated blockwise.
func rotationBlock(n, limit int) int {
	b := 1
	for b*2 <= limit && n%(b*2) == 0 {
		b *= 2
	}
	return b
}

// rotateRows returns Qᵀ·W for Q = I ⊗ M (block-diagonal with the b×b
// block M) and W [K, N] stored row-major: row block k becomes Mᵀ times
// the same block of W.
func rotateRows(w Matrix, m Matrix) Matrix {
	b := m.Rows
	out := NewMatrix(w.Rows, w.Cols)
	for k0 := 0; k0 < w.Rows; k0 += b {
		for i := range b {
			dst := out.Row(k0 + i)
			for j := range b {
				f := m.Data[j*b+i] // Mᵀ[i][j]
				if f == 0 {
					continue
				}
				src := w.Row(k0 + j)
				for c := range dst {
					dst[c] += f * src[c]
				}
			}
		}
	}
	return out
}
