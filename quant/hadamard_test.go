package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// orthoTol bounds |QQᵀ − I| for float32 matrices of order ≤ 256: each
// entry sums n products of magnitude 1/n, with relative rounding 2⁻²⁴.
const orthoTol = 1e-5

func TestRandomHadamardIsOrthogonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for n := 1; n <= 256; n *= 2 {
		for _, q := range []Matrix{Hadamard(n), RandomHadamard(n, rng)} {
			for i := range n {
				for j := range n {
					s := 0.0
					for k := range n {
						s += float64(q.At(i, k)) * float64(q.At(j, k))
					}
					want := 0.0
					if i == j {
						want = 1
					}
					if math.Abs(s-want) > orthoTol {
						t.Fatalf("n=%d: (QQᵀ)[%d][%d] = %v", n, i, j, s)
					}
				}
			}
		}
	}
}

func TestRotationBlock(t *testing.T) {
	for _, c := range []struct{ n, limit, want int }{
		{64, 256, 64}, {768, 256, 256}, {96, 256, 32}, {100, 256, 4}, {7, 256, 1}, {1024, 128, 128},
	} {
		if got := rotationBlock(c.n, c.limit); got != c.want {
			t.Errorf("rotationBlock(%d, %d) = %d, want %d", c.n, c.limit, got, c.want)
		}
	}
}

// rotateInput returns x·(I⊗M) for x [rows, K].
func rotateInput(x Matrix, m Matrix) Matrix {
	b := m.Rows
	out := NewMatrix(x.Rows, x.Cols)
	for r := range x.Rows {
		for k0 := 0; k0 < x.Cols; k0 += b {
			for j := range b {
				s := float32(0)
				for i := range b {
					s += x.At(r, k0+i) * m.At(i, j)
				}
				out.Data[r*x.Cols+k0+j] = s
			}
		}
	}
	return out
}

// product returns x·W for x [rows, K] and W [K, N].
func product(x, w Matrix) Matrix {
	out := NewMatrix(x.Rows, w.Cols)
	for r := range x.Rows {
		for k := range x.Cols {
			a := x.At(r, k)
			for c := range w.Cols {
				out.Data[r*w.Cols+c] += a * w.At(k, c)
			}
		}
	}
	return out
}

func TestRotationPreservesProductAndSpreadsOutliers(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	const rows, k, n = 32, 128, 16
	x := randMatrix(rng, rows, k)
	w := randMatrix(rng, k, n) // stored [K, N]
	for c := range n {
		w.Data[5*n+c] *= 40 // one outlier input channel
	}
	m := RandomHadamard(rotationBlock(k, maxRotationBlock), rng)
	xq, wq := rotateInput(x, m), rotateRows(w, m)
	want, got := product(x, w), product(xq, wq)
	if e := relL2(got.Data, want.Data); e > 1e-5 {
		t.Fatalf("(xQ)(QᵀW) differs from xW: relative error %g", e)
	}
	// 4-bit per-channel RTN along K: the rotated weight loses less.
	plain, _ := RTN(w.T(), Scheme{4, true}, PerChannel())
	rot, _ := RTN(wq.T(), Scheme{4, true}, PerChannel())
	ePlain := relL2(product(x, plain.Dequantize().T()).Data, want.Data)
	eRot := relL2(product(xq, rot.Dequantize().T()).Data, want.Data)
	t.Logf("4-bit output error: plain %.4f, rotated %.4f", ePlain, eRot)
	if eRot >= ePlain {
		t.Errorf("rotation did not reduce the 4-bit error: %.4f ≥ %.4f", eRot, ePlain)
	}
}
