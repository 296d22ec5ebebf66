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
	rankUpdate(g.S, g.Cols, x[:m*g.Cols])
	g.N += float64(m)
}

// TakeHessian returns H = (2/N)·S with both triangles filled, computed
// in S's own storage: no second Cols×Cols copy (242 MB for a 5504-wide
// layer). The Gram is spent: rows added after it are lost.
func (g *Gram) TakeHessian() []float64 {
	h := g.S
	g.S = nil
	f := 0.0
	if g.N != 0 {
		f = 2 / g.N
	}
	for i := range g.Cols {
		for j := i; j < g.Cols; j++ {
			v := h[i*g.Cols+j] * f
			h[i*g.Cols+j], h[j*g.Cols+i] = v, v
		}
	}
	return h
}

// Hessian is a Gram per input group (grouped Convs) whose rows may carry
// weights (RSQ's token importance): H_g = (2/N) Σ w_t x_t x_tᵀ over the
// rows x_t of group g, N the total weight. GPTQ quantizes against it.
type Hessian struct {
	Cols int
	// H holds one Cols×Cols row-major sum per group, upper triangle kept
	// up to date.
	H [][]float64
	// N is the total weight of the rows added.
	N float64
	// Rows counts the rows added (tokens or pixels), whatever their
	// weights: a Hessian of fewer rows than Cols is rank-deficient.
	Rows int
}

// NewHessian returns an empty accumulator.
func NewHessian(cols, groups int) *Hessian {
	h := &Hessian{Cols: cols, H: make([][]float64, groups)}
	for i := range h.H {
		h.H[i] = make([]float64, cols*cols)
	}
	return h
}

// AddRows adds the rows of x (m×Cols, row-major) to group g, row i
// weighted by weights[i] (1 when weights is nil).
func (h *Hessian) AddRows(g int, x []float64, weights []float64) {
	m := len(x) / h.Cols
	if m == 0 {
		return
	}
	h.Rows += m
	if weights != nil {
		x = append([]float64(nil), x...)
		for i := range m {
			s := math.Sqrt(weights[i])
			for j := range h.Cols {
				x[i*h.Cols+j] *= s
			}
			h.N += weights[i]
		}
	} else {
		h.N += float64(m)
	}
	rankUpdate(h.H[g], h.Cols, x)
}

// Group returns group g's H = (2/N)·Σ, full (both triangles).
func (h *Hessian) Group(g int) []float64 { return scaledFull(h.H[g], h.Cols, h.N) }

// Normalized returns a copy scaled to (2/N)Σ, ready for GPTQ.
func (h *Hessian) Normalized() *Hessian {
	out := &Hessian{Cols: h.Cols, N: h.N, Rows: h.Rows, H: make([][]float64, len(h.H))}
	for g := range h.H {
		out.H[g] = h.Group(g)
	}
	return out
}

// rankUpdate adds xᵀx (x m×cols, row-major) to the upper triangle of the
// cols×cols sum s.
func rankUpdate(s []float64, cols int, x []float64) {
	sum := mat.NewSymDense(cols, s)
	sum.SymRankK(sum, 1, mat.NewDense(len(x)/cols, cols, x).T())
}

// scaledFull returns (2/n)·s with both triangles filled from the upper
// one (zero when n is).
func scaledFull(s []float64, cols int, n float64) []float64 {
	out := make([]float64, cols*cols)
	if n == 0 {
		return out
	}
	f := 2 / n
	for i := range cols {
		for j := i; j < cols; j++ {
			v := s[i*cols+j] * f
			out[i*cols+j], out[j*cols+i] = v, v
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
