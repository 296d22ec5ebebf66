package calib

import (
	"math"
	"testing"
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
