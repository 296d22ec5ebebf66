package calib

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"gonum.org/v1/gonum/mat"
)

// ErrNotPositiveDefinite marks a Hessian that stays singular after every
// damping.
var ErrNotPositiveDefinite = errors.New("Hessian not positive definite after damping")

// DampTries is how many times DampedInverse multiplies the damping by
// ten before giving up.
const DampTries = 7

// DampedInverse returns (H + λI)⁻¹ for a symmetric H, with λ = damp·mean(diag H); a zero or NaN mean
// counts as 1. When H + λI is not positive definite in floating point, λ
// is multiplied by 10, at most DampTries times in all. The one damped
// inverse of OBS compensation (package prune) and GPTQ (package quant).
func DampedInverse(h mat.Symmetric, damp float64) (*mat.SymDense, error) {
	inv, _, err := DampedInverseLambda(h, damp)
	return inv, err
}

// DampedInverseLambda is DampedInverse that also returns the λ it added
// to the diagonal (GPTQ derives its output error from it).
func DampedInverseLambda(h mat.Symmetric, damp float64) (*mat.SymDense, float64, error) {
	n := h.SymmetricDim()
	mean := 0.0
	for i := range n {
		mean += h.At(i, i)
	}
	mean /= float64(max(n, 1))
	if !(mean > 0) || math.IsInf(mean, 0) {
		mean = 1
	}
	lambda := damp * mean
	for range DampTries {
		a := mat.NewSymDense(n, nil)
		a.CopySym(h)
		for i := range n {
			a.SetSym(i, i, a.At(i, i)+lambda)
		}
		var ch mat.Cholesky
		if ch.Factorize(a) {
			var inv mat.SymDense
			if err := ch.InverseTo(&inv); err == nil {
				return &inv, lambda, nil
			}
		}
		lambda *= 10
	}
	return nil, 0, ErrNotPositiveDefinite
}

// DampedInverseRows is DampedInverse for a row-major n×n H, returning a
// row-major n×n inverse.
func DampedInverseRows(h []float64, n int, damp float64) ([]float64, error) {
	if len(h) != n*n {
		return nil, fmt.Errorf("calib: %d values for a %d×%d Hessian", len(h), n, n)
	}
	// DampedInverse only reads h (it factorises a damped copy), so h is
	// wrapped, not copied: for a 5504-wide layer a copy is 242 MB.
	inv, err := DampedInverse(mat.NewSymDense(n, h), damp)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	out := make([]float64, n*n)
	for i := range n {
		for j := range n {
			out[i*n+j] = inv.At(i, j)
		}
	}
	return out, nil
}

// CollectAfter runs the garbage collector when float64 work buffers of
// about n×n values were just dropped (an inversion's, a refit's, an OBS
// update's) and they are large: a 5504-column inverse leaves 726 MB,
// and with the default GOGC the heap waits to double the live data
// (several GiB of kept inverses on a decoder) before collecting them.
// Float slices hold no pointers, so a collection costs little.
func CollectAfter(n int) { CollectAfterBytes(int64(n) * int64(n) * 8) }

// CollectAfterBytes runs a collection when the buffers just dropped
// came to 32 MB or more.
func CollectAfterBytes(b int64) {
	if b >= 32<<20 {
		runtime.GC()
	}
}
