package calib

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Gram accumulates S = Σ x xᵀ over rows x of Cols values, and N, the
// number of rows. H = (2/N)·S is the layer-wise OBS/GPTQ Hessian.
//
// S is symmetric, so only its upper triangle is stored, packed by rows
// (Row): a decoder's OBS keeps one Gram per consumer layer alive through
// the whole calibration pass, 2.8 GB of them on a 2.3 GB model when
// stored square (docs/BENCHMARKS.md, "Packed statistics").
type Gram struct {
	Cols int
	S    []float64 // packed upper triangle: row i holds S[i][i:]
	N    float64
}

// NewGram returns an empty accumulator.
func NewGram(cols int) *Gram { return &Gram{Cols: cols, S: make([]float64, cols*(cols+1)/2)} }

// GramOf wraps a full row-major Hessian h (n×n, symmetric) as a Gram
// with N = 2, so that (2/N)·S is h itself, bit for bit.
func GramOf(h []float64, n int) *Gram {
	g := NewGram(n)
	for i := range n {
		copy(g.Row(i), h[i*n+i:(i+1)*n])
	}
	g.N = 2
	return g
}

// Row returns S[i][i:], the stored part of row i (a view into S).
func (g *Gram) Row(i int) []float64 {
	off := i*g.Cols - i*(i-1)/2
	return g.S[off : off+g.Cols-i]
}

// Add adds the rows of x (m×Cols, row-major). Each stored row gets the
// same sums in the same order as BLAS's dsyrk on square storage, so the
// statistics are those of a square Gram bit for bit.
func (g *Gram) Add(x []float64) {
	c := g.Cols
	m := len(x) / c
	if m == 0 {
		return
	}
	for i := range c {
		row := blas64.Vector{N: c - i, Inc: 1, Data: g.Row(i)}
		for l := range m {
			if a := x[l*c+i]; a != 0 {
				blas64.Axpy(a, blas64.Vector{N: c - i, Inc: 1, Data: x[l*c+i : (l+1)*c]}, row)
			}
		}
	}
	g.N += float64(m)
}

// scaledUpper writes the upper triangle of (2/N)·S into the row-major
// n×n h (zero when N is).
func (g *Gram) scaledUpper(h []float64) {
	f := 0.0
	if g.N != 0 {
		f = 2 / g.N
	}
	n := g.Cols
	for i := range n {
		dst := h[i*n+i : (i+1)*n]
		for j, v := range g.Row(i) {
			dst[j] = v * f
		}
	}
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
