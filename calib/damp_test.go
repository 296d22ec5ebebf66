package calib

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// Damping adds 1% of the mean diagonal before inverting, and ten times
// more until a singular H factorises.
func TestDampedInverse(t *testing.T) {
	h := []float64{2, 0, 0, 4} // mean diagonal 3, λ = 0.03
	inv, err := DampedInverseRows(h, 2, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1 / 2.03, 0, 0, 1 / 4.03}
	for i := range want {
		if math.Abs(inv[i]-want[i]) > 1e-12 {
			t.Errorf("inv[%d] = %v, want %v", i, inv[i], want[i])
		}
	}
	// A rank-one H is singular; the damped inverse must invert H + λI
	// for one of the λ DampedInverse tries (0.01·10^k).
	h = []float64{1, 1, 1, 1}
	inv, err = DampedInverseRows(h, 2, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for k := range DampTries {
		l := 0.01 * math.Pow(10, float64(k))
		ok := true
		for r := range 2 {
			for c := range 2 {
				v := 0.0
				for j := range 2 {
					a := h[r*2+j]
					if r == j {
						a += l
					}
					v += a * inv[j*2+c]
				}
				want := 0.0
				if r == c {
					want = 1
				}
				if math.Abs(v-want) > 1e-6 {
					ok = false
				}
			}
		}
		found = found || ok
	}
	if !found {
		t.Errorf("inverse %v inverts no damped H", inv)
	}
}

// The in-place inversion of DampedInverseRows gives the same values,
// bit for bit, as DampedInverse's mat.Cholesky path: on a well-posed H,
// and on a rank-deficient one whose first damping passes the
// factorisation but not the condition bound.
func TestDampedInverseRowsMatchesCholesky(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name    string
		n, rank int
		damp    float64
	}{{"full rank", 40, 60, 0.01}, {"rank 3", 40, 3, 1e-18}} {
		x := make([]float64, tc.rank*tc.n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		h := make([]float64, tc.n*tc.n)
		for r := range tc.rank {
			for i := range tc.n {
				for j := range tc.n {
					h[i*tc.n+j] += x[r*tc.n+i] * x[r*tc.n+j]
				}
			}
		}
		got, err := DampedInverseRows(h, tc.n, tc.damp)
		if err != nil {
			t.Fatal(err)
		}
		want, lambda, err := DampedInverseLambda(mat.NewSymDense(tc.n, h), tc.damp)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tc.n {
			for j := range tc.n {
				if got[i*tc.n+j] != want.At(i, j) {
					t.Fatalf("%s: inverse[%d,%d] = %v, mat.Cholesky gives %v", tc.name, i, j, got[i*tc.n+j], want.At(i, j))
				}
			}
		}
		t.Logf("%s: λ = %.3g (%.3g × the first)", tc.name, lambda, lambda/(tc.damp*meanDiagonal(tc.n, func(i int) float64 { return h[i*tc.n+i] })))
	}
}
