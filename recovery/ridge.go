package recovery

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
)

// layerFit accumulates one layer's least-squares statistics over the
// calibration rows: S = Σ x̃ x̃ᵀ and R = Σ x̃ tᵀ, x̃ the pruned layer's
// input rows (a trailing 1 when a bias is fitted) and t the rows its
// outputs should match.
type layerFit struct {
	cols, out int
	gram      *calib.Gram
	cross     *calib.Cross
}

func newLayerFit(cols, out int) *layerFit {
	return &layerFit{cols: cols, out: out, gram: calib.NewGram(cols), cross: calib.NewCross(cols, out)}
}

// add adds input rows x (cols each) and target rows t (out each).
func (f *layerFit) add(x, t []float64) error {
	if m := len(x) / f.cols; len(t) != m*f.out {
		return fmt.Errorf("%d input rows, %d target values of %d", m, len(t), f.out)
	}
	f.gram.Add(x)
	return f.cross.Add(x, t)
}

// solve returns the refit X (cols × out; row j of column r is W̃[r, j],
// the bias last when fitBias): (S/N + λ·d·I_w) X = R/N, with λ
// ReconDamping, d the mean diagonal of S/N over the weight columns and
// I_w the identity on them (a fitted bias is not shrunk).
func (f *layerFit) solve(fitBias bool) (*mat.Dense, error) {
	c, n := f.cols, f.gram.N
	if n == 0 {
		return nil, fmt.Errorf("no calibration rows")
	}
	nw := c
	if fitBias {
		nw--
	}
	d := 0.0
	for i := range nw {
		d += f.gram.Row(i)[0] / n
	}
	d /= float64(max(nw, 1))
	if d <= 0 {
		d = 1
	}
	a := mat.NewSymDense(c, nil)
	for i := range c {
		row := f.gram.Row(i)
		for j := i; j < c; j++ {
			v := row[j-i] / n
			if i == j && i < nw {
				v += ReconDamping * d
			}
			a.SetSym(i, j, v)
		}
	}
	rhs := mat.NewDense(c, f.out, nil)
	for i, v := range f.cross.C {
		rhs.Set(i/f.out, i%f.out, v/n)
	}
	return solveGram(a, rhs)
}
