package calib

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Gram accumulates S = Σ x xᵀ over rows x of Cols values, and N, the
// number of rows. H = (2/N)·S is the layer-wise OBS/GPTQ Hessian.
type Gram struct {
	Cols int
	S    []float64 // Cols×Cols, upper triangle kept up to date
	N    float64
}

// NewGram returns an empty accumulator.
func NewGram(cols int) *Gram { return &Gram{Cols: cols, S: make([]float64, cols*cols)} }

// Add adds the rows of x (m×Cols, row-major).
func (g *Gram) Add(x []float64) {
	m := len(x) / g.Cols
	if m == 0 {
		return
	}
	sum := mat.NewSymDense(g.Cols, g.S)
	sum.SymRankK(sum, 1, mat.NewDense(m, g.Cols, x[:m*g.Cols]).T())
	g.N += float64(m)
}

// Hessian returns H = (2/N)·S with both triangles filled.
func (g *Gram) Hessian() []float64 {
	c := g.Cols
	out := make([]float64, c*c)
	if g.N == 0 {
		return out
	}
	f := 2 / g.N
	for i := range c {
		for j := i; j < c; j++ {
			v := g.S[i*c+j] * f
			out[i*c+j], out[j*c+i] = v, v
		}
	}
	return out
}

// Cross accumulates C = Σ a bᵀ over paired rows a (A values) and b (B
// values), with N rows.
type Cross struct {
	A, B int
	C    []float64 // A×B
	N    float64
}

// NewCross returns an empty accumulator.
func NewCross(a, b int) *Cross { return &Cross{A: a, B: b, C: make([]float64, a*b)} }

// Add adds paired rows (m×A and m×B).
func (c *Cross) Add(a, b []float64) error {
	m := len(a) / c.A
	if m*c.B != len(b) {
		return fmt.Errorf("calib: %d rows of %d and %d values of %d", m, c.A, len(b), c.B)
	}
	if m == 0 {
		return nil
	}
	var batch mat.Dense
	batch.Mul(mat.NewDense(m, c.A, a).T(), mat.NewDense(m, c.B, b))
	dst := mat.NewDense(c.A, c.B, c.C)
	dst.Add(dst, &batch)
	c.N += float64(m)
	return nil
}

// SquareSums accumulates Σ x_j² per column (Wanda's ‖X_j‖₂²).
type SquareSums struct {
	Cols int
	S    []float64
	N    float64
}

// NewSquareSums returns an empty accumulator.
func NewSquareSums(cols int) *SquareSums { return &SquareSums{Cols: cols, S: make([]float64, cols)} }

// Add adds the rows of x.
func (s *SquareSums) Add(x []float64) {
	m := len(x) / s.Cols
	for r := range m {
		row := x[r*s.Cols : (r+1)*s.Cols]
		for j, v := range row {
			s.S[j] += v * v
		}
	}
	s.N += float64(m)
}

// Norms returns ‖X_j‖₂ per column.
func (s *SquareSums) Norms() []float64 {
	out := make([]float64, s.Cols)
	for j, v := range s.S {
		out[j] = math.Sqrt(v)
	}
	return out
}
