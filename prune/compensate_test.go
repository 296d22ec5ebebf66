package prune

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// A 3-input layer with two outputs, five input rows. Removing input 1
// with the OBS update must give the same weights as re-fitting the
// remaining columns by least squares on the inputs (exact without
// damping), and the OBS cost must equal the least-squares residual
// (1/n)‖X(W−W')ᵀ‖².
func TestOBSRemoveMatchesLeastSquares(t *testing.T) {
	x := []float64{
		1, 2, 0.5,
		0, 1, -1,
		2, -1, 1,
		1, 1, 1,
		-1, 0.5, 2,
	}
	const n, cols, rows = 5, 3, 2
	w := []float64{
		0.5, -1, 2,
		1.5, 0.25, -0.5,
	}
	X := mat.NewDense(n, cols, x)
	var s mat.Dense
	s.Mul(X.T(), X)
	h := make([]float64, cols*cols)
	for i := range cols {
		for j := range cols {
			h[i*cols+j] = 2 / float64(n) * s.At(i, j)
		}
	}
	var inv mat.Dense
	if err := inv.Inverse(mat.NewDense(cols, cols, h)); err != nil {
		t.Fatal(err)
	}
	hinv := inv.RawMatrix().Data
	q := []int{1}
	cost, err := OBSCost(w, rows, cols, hinv, q)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]float64{}, w...)
	if err := OBSRemove(got, rows, cols, hinv, q); err != nil {
		t.Fatal(err)
	}

	// Least squares: W'_R = W XᵀX_R (X_RᵀX_R)⁻¹ with R the kept columns.
	keep := []int{0, 2}
	XR := mat.NewDense(n, len(keep), nil)
	for r := range n {
		for a, j := range keep {
			XR.Set(r, a, x[r*cols+j])
		}
	}
	W := mat.NewDense(rows, cols, w)
	var y, gram, gramInv, rhs, want mat.Dense
	y.Mul(X, W.T()) // n×rows targets
	gram.Mul(XR.T(), XR)
	if err := gramInv.Inverse(&gram); err != nil {
		t.Fatal(err)
	}
	rhs.Mul(XR.T(), &y)
	want.Mul(&gramInv, &rhs) // kept×rows
	for r := range rows {
		if got[r*cols+1] != 0 {
			t.Errorf("row %d: removed column is %v, want 0", r, got[r*cols+1])
		}
		for a, j := range keep {
			if d := math.Abs(got[r*cols+j] - want.At(a, r)); d > 1e-9 {
				t.Errorf("W'[%d,%d] = %v, least squares %v", r, j, got[r*cols+j], want.At(a, r))
			}
		}
	}
	// Residual of the fit, (1/n)‖X Wᵀ − X W'ᵀ‖².
	var yp mat.Dense
	yp.Mul(X, mat.NewDense(rows, cols, got).T())
	res := 0.0
	for r := range n {
		for c := range rows {
			d := y.At(r, c) - yp.At(r, c)
			res += d * d
		}
	}
	res /= n
	if math.Abs(cost-res) > 1e-9 {
		t.Errorf("OBS cost %v, least-squares residual %v", cost, res)
	}
}

func TestKeptPositions(t *testing.T) {
	p := &Plan{Groups: []PlanGroup{
		{ID: 0, Size: 2, Kept: []int{1}, Members: []Member{
			{Tensor: "w", Axis: 1, Map: IndexMap{0, 0, 1, 1, -1}},
		}},
		{ID: 1, Size: 2, Frozen: true, Members: []Member{{Tensor: "w", Axis: 0, Map: IndexMap{0, 1}}}},
	}}
	got := KeptPositions(p, "w", 1, 5)
	want := []bool{false, false, true, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
	if k := KeptPositions(p, "w", 0, 2); !k[0] || !k[1] {
		t.Errorf("frozen group's positions removed: %v", k)
	}
}
