package calib

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
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
	lambda := damp * meanDiagonal(n, func(i int) float64 { return h.At(i, i) })
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

// meanDiagonal is the mean of the n values diag(i), or 1 when that is
// zero, negative, NaN or infinite: the scale damping is a fraction of.
func meanDiagonal(n int, diag func(i int) float64) float64 {
	mean := 0.0
	for i := range n {
		mean += diag(i)
	}
	mean /= float64(max(n, 1))
	if !(mean > 0) || math.IsInf(mean, 0) {
		mean = 1
	}
	return mean
}

// DampedInverseRows is DampedInverse for a row-major n×n H, returning a
// row-major n×n inverse. It factorises and inverts in the returned
// slice itself (LAPACK's potrf and potri, as mat.Cholesky does, with the
// same condition bound), so an inversion holds one n×n buffer besides
// h instead of four: 242 MB instead of 968 MB for a 5504-wide layer,
// whose inverses a decoder's OBS makes one after another while every
// other layer's statistics are alive.
func DampedInverseRows(h []float64, n int, damp float64) ([]float64, error) {
	if len(h) != n*n {
		return nil, fmt.Errorf("calib: %d values for a %d×%d Hessian", len(h), n, n)
	}
	return dampedInverse(n, damp, func(out []float64) { copy(out, h) })
}

// TakeDampedInverse is DampedInverseRows of the Gram's Hessian (2/N)·S,
// built from the packed sums straight into the inverse's buffer: no
// square Hessian is ever held. The Gram is spent.
func (g *Gram) TakeDampedInverse(damp float64) ([]float64, error) {
	defer func() { g.S = nil }()
	return dampedInverse(g.Cols, damp, g.scaledUpper)
}

// dampedInverse inverts H + λI, H's upper triangle written into the
// row-major n×n buffer by fill (called again before each retry, the
// failed factorisation having overwritten it).
func dampedInverse(n int, damp float64, fill func(out []float64)) ([]float64, error) {
	out := make([]float64, n*n)
	fill(out)
	lambda := damp * meanDiagonal(n, func(i int) float64 { return out[i*n+i] })
	work, iwork := make([]float64, 3*n), make([]int, n)
	for try := range DampTries {
		if try > 0 {
			fill(out)
		}
		for i := range n {
			out[i*n+i] += lambda
		}
		a := blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: out}
		norm := lapack64.Lansy(mat.CondNorm, a, work)
		if _, ok := lapack64.Potrf(a); ok {
			cond := 1 / lapack64.Pocon(a, norm, work, iwork)
			u := blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: n, Stride: n, Data: out}
			if _, ok := lapack64.Potri(u); ok && cond <= mat.ConditionTolerance {
				// potri leaves the upper triangle; the callers read rows.
				for i := range n {
					for j := i + 1; j < n; j++ {
						out[j*n+i] = out[i*n+j]
					}
				}
				return out, nil
			}
		}
		lambda *= 10
	}
	return nil, fmt.Errorf("calib: %w", ErrNotPositiveDefinite)
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
