package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// gptqBlock is the number of columns GPTQ updates lazily before
// propagating their errors to the rest of the matrix (the paper's B).
const gptqBlock = 128

// updRows is the number of rows whose block update is computed at once.
const updRows = 512

// maxDampTries bounds the retries with ten times more damping when the
// damped Hessian is not positive definite in floating point (λ grows at
// most 10¹¹-fold, as far as before the factorisation was direct).
const maxDampTries = 12

// GPTQOptions tune GPTQ.
type GPTQOptions struct {
	// Damp is added to the diagonal as a fraction of its mean (default
	// 0.01).
	Damp float64
	// ActOrder quantizes columns by descending Hessian diagonal; the grids
	// are then fitted up front per group ("static groups") so that the
	// stored layout keeps groups of consecutive columns.
	ActOrder bool
}

// GPTQ quantizes w ([out, in]) column by column, spreading each column's
// rounding error over the columns not yet quantized in proportion to the
// inverse Hessian of the layer's inputs, so that ‖XWᵀ − XŴᵀ‖ (here
// tr((W−Ŵ)H(W−Ŵ)ᵀ)) stays small (Frantar et al., 2022). h holds one
// Hessian per input group (Conv groups); rows are split evenly between
// them.
func GPTQ(w Matrix, h *Hessian, s Scheme, g Granularity, opts GPTQOptions) (*Quantized, error) {
	q, _, err := gptq(w, h, s, g, opts)
	return q, err
}

// gptq is GPTQ that also returns tr((W−Ŵ)H(W−Ŵ)ᵀ) summed over the
// groups (with h as accumulated, not normalised), or NaN when it could
// not be derived from the run (see gptqGroup).
func gptq(w Matrix, h *Hessian, s Scheme, g Granularity, opts GPTQOptions) (*Quantized, float64, error) {
	if err := w.validate(); err != nil {
		return nil, 0, fmt.Errorf("quant: gptq: %w", err)
	}
	if h.Cols != w.Cols || len(h.H) == 0 || w.Rows%len(h.H) != 0 {
		return nil, 0, fmt.Errorf("quant: gptq: %w: %d×%d weight, Hessian of %d columns in %d groups", ErrInvalid, w.Rows, w.Cols, h.Cols, len(h.H))
	}
	if opts.Damp <= 0 {
		opts.Damp = 0.01
	}
	q, err := newQuantized(s, g, w.Rows, w.Cols)
	if err != nil {
		return nil, 0, fmt.Errorf("quant: gptq: %w", err)
	}
	if g.IsPerTensor() {
		if q.Grids[0], err = s.FitValues(w.Data); err != nil {
			return nil, 0, fmt.Errorf("quant: gptq: %w", err)
		}
	}
	rowsPer := w.Rows / len(h.H)
	loss := 0.0
	for gi, hg := range h.H {
		sub := Matrix{Rows: rowsPer, Cols: w.Cols, Data: w.Data[gi*rowsPer*w.Cols : (gi+1)*rowsPer*w.Cols]}
		l, err := gptqGroup(sub, hg, q, gi*rowsPer, opts)
		if err != nil {
			return nil, 0, err
		}
		loss += l
	}
	return q, loss, nil
}

// gptqGroup runs GPTQ on the rows of w (rows row0… of q) with Hessian hg
// (cols×cols, row-major, upper triangle read, not yet normalised) and
// returns tr((W−Ŵ)H(W−Ŵ)ᵀ) over these rows, or NaN when it cannot be
// told accurately from the run.
//
// The trace comes for free: with H⁻¹ = UᵀU (H damped) the run leaves
// W − Ŵ = E·U, E the scaled errors e = (w − q)/U_ii, so that
// tr((W−Ŵ)(H+λI)(W−Ŵ)ᵀ) = ΣE²; the damping's λ‖W−Ŵ‖² (and the unit
// diagonal given to dead inputs) is then taken off. Computing the trace
// from H directly cost four times the rest of GPTQ on wide layers.
func gptqGroup(w Matrix, hg []float64, q *Quantized, row0 int, opts GPTQOptions) (float64, error) {
	s, g := q.Scheme, q.Gran
	rows, cols := w.Rows, w.Cols
	H := mat.NewSymDense(cols, nil)
	hr := H.RawSymmetric()
	for i := range cols {
		copy(hr.Data[i*hr.Stride+i:i*hr.Stride+cols], hg[i*cols+i:(i+1)*cols])
	}
	// W is row-major rows×cols in float64, in the quantization order.
	W := make([]float64, rows*cols)
	for i, v := range w.Data {
		W[i] = float64(v)
	}
	// Dead inputs: never active, so their weights do not matter.
	var dead []int
	for i := range cols {
		if hr.Data[i*hr.Stride+i] == 0 {
			hr.Data[i*hr.Stride+i] = 1
			dead = append(dead, i)
			for r := range rows {
				W[r*cols+i] = 0
			}
		}
	}
	perm := make([]int, cols)
	for i := range perm {
		perm[i] = i
	}
	static := opts.ActOrder || g.IsPerChannel()
	if opts.ActOrder {
		slices.SortStableFunc(perm, func(a, b int) int {
			da, db := H.At(a, a), H.At(b, b)
			switch {
			case da > db:
				return -1
			case da < db:
				return 1
			}
			return 0
		})
		Hp := mat.NewSymDense(cols, nil)
		for i := range cols {
			for j := i; j < cols; j++ {
				Hp.SetSym(i, j, H.At(perm[i], perm[j]))
			}
		}
		Wp := make([]float64, rows*cols)
		for r := range rows {
			src, dst := W[r*cols:(r+1)*cols], Wp[r*cols:(r+1)*cols]
			for i, p := range perm {
				dst[i] = src[p]
			}
		}
		H, W = Hp, Wp
	}
	// Grids fitted before the loop (per channel, or any act-order run)
	// come from the original weights, group by group.
	if static && !g.IsPerTensor() {
		span := g.groupCols(cols)
		for r := range rows {
			row := w.Row(r)
			for c0 := 0; c0 < cols; c0 += span {
				grid, err := s.FitValues(row[c0:min(c0+span, cols)])
				if err != nil {
					return 0, fmt.Errorf("quant: gptq: %w", err)
				}
				q.Grids[q.GridIndex(row0+r, c0)] = grid
			}
		}
	}
	U, lambda, err := invCholeskyUpper(H, opts.Damp)
	if err != nil {
		return 0, err
	}
	ur := U.RawMatrix()
	span := g.groupCols(cols)
	errs := make([]float64, rows*gptqBlock)
	updBuf := make([]float64, min(rows, updRows)*max(cols-gptqBlock, 0))
	sumE2 := make([]float64, rows)
	for b0 := 0; b0 < cols; b0 += gptqBlock {
		b1 := min(b0+gptqBlock, cols)
		nb := b1 - b0
		// Rows are independent within a block: each goes through the
		// block's columns on its own.
		err := parallelRows(rows, func(r0, r1 int) error {
			vals := make([]float32, 0, span)
			for r := r0; r < r1; r++ {
				wr := W[r*cols : (r+1)*cols]
				er := errs[r*gptqBlock : r*gptqBlock+nb]
				for i := b0; i < b1; i++ {
					orig := perm[i]
					if !static && !g.IsPerTensor() && orig%span == 0 {
						// Refit this group's grid on the updated weights.
						vals = vals[:0]
						for _, v := range wr[i:min(i+span, cols)] {
							vals = append(vals, float32(v))
						}
						grid, err := s.FitValues(vals)
						if err != nil {
							return fmt.Errorf("quant: gptq: %w", err)
						}
						q.Grids[q.GridIndex(row0+r, orig)] = grid
					}
					grid := q.Grids[q.GridIndex(row0+r, orig)]
					x := wr[i]
					code := s.Quantize(float32(x), grid)
					q.Q[(row0+r)*cols+orig] = code
					e := (x - float64(Dequantize(code, grid))) / ur.Data[i*ur.Stride+i]
					er[i-b0] = e
					sumE2[r] += e * e
					urow := ur.Data[i*ur.Stride+i+1 : i*ur.Stride+b1]
					rest := wr[i+1 : b1]
					for j, u := range urow {
						rest[j] -= e * u
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if b1 < cols {
			// The block's errors times U go to the later columns, in
			// chunks of rows through one buffer (a 32000-row head would
			// otherwise take a second copy of W per block).
			Ub := U.Slice(b0, b1, b1, cols)
			for r0 := 0; r0 < rows; r0 += updRows {
				r1 := min(r0+updRows, rows)
				E := mat.NewDense(r1-r0, nb, nil)
				er := E.RawMatrix()
				for r := r0; r < r1; r++ {
					copy(er.Data[(r-r0)*er.Stride:(r-r0)*er.Stride+nb], errs[r*gptqBlock:r*gptqBlock+nb])
				}
				upd := mat.NewDense(r1-r0, cols-b1, updBuf[:(r1-r0)*(cols-b1)])
				upd.Mul(E, Ub)
				ud := upd.RawMatrix()
				for r := r0; r < r1; r++ {
					rest := W[r*cols+b1 : (r+1)*cols]
					for j, v := range ud.Data[(r-r0)*ud.Stride : (r-r0)*ud.Stride+cols-b1] {
						rest[j] -= v
					}
				}
			}
		}
	}
	// tr(Δ(H+λI)Δᵀ) = ΣE², Δ = W0 − Ŵ in the quantization order.
	total, dampTerm, deadTerm := 0.0, 0.0, 0.0
	isDead := make([]bool, cols)
	for _, c := range dead {
		isDead[c] = true
	}
	for r := range rows {
		total += sumE2[r]
		for _, p := range perm {
			code := q.Q[(row0+r)*cols+p]
			w0 := 0.0 // the weight GPTQ started from: dead inputs zeroed
			if !isDead[p] {
				w0 = float64(w.At(r, p))
			}
			d := w0 - float64(Dequantize(code, q.Grids[q.GridIndex(row0+r, p)]))
			dampTerm += d * d
			if isDead[p] {
				deadTerm += d * d
			}
		}
	}
	loss := total - lambda*dampTerm - deadTerm
	// Far below the damping it is taken from, the difference is
	// rounding noise: the caller computes the trace directly.
	if !(loss > 1e-6*total) {
		return math.NaN(), nil
	}
	return loss, nil
}

// parallelRows runs f over [0, rows) split into one contiguous range per
// available CPU, and returns the first error.
func parallelRows(rows int, f func(r0, r1 int) error) error {
	n := min(runtime.GOMAXPROCS(0), max(rows/16, 1))
	if n <= 1 {
		return f(0, rows)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		r0, r1 := k*rows/n, (k+1)*rows/n
		wg.Go(func() { errs[k] = f(r0, r1) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// invCholeskyUpper damps H (λ = damp × the mean of its diagonal) and
// returns the upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) with the λ
// added, trying again with ten times more damping while the damped
// matrix does not factorise.
//
// U comes from one factorisation and one triangular inverse instead of
// inverting H and factorising the inverse (three n³ steps, the largest
// single cost of GPTQ on wide layers): with J the reversal permutation
// and JHJ = LLᵀ, H⁻¹ = (JL⁻¹J)ᵀ(JL⁻¹J), and JL⁻¹J is upper triangular
// with a positive diagonal, so it is the factor sought.
func invCholeskyUpper(H *mat.SymDense, damp float64) (*mat.Dense, float64, error) {
	n := H.SymmetricDim()
	mean := 0.0
	for i := range n {
		mean += H.At(i, i)
	}
	mean /= float64(n)
	if !(mean > 0) || math.IsInf(mean, 0) {
		return nil, 0, fmt.Errorf("quant: gptq: %w: Hessian diagonal mean %v", ErrInvalid, mean)
	}
	rev := mat.NewSymDense(n, nil)
	lambda := damp * mean
	for range maxDampTries {
		for i := range n {
			for j := i; j < n; j++ {
				rev.SetSym(i, j, H.At(n-1-i, n-1-j))
			}
			rev.SetSym(i, i, rev.At(i, i)+lambda)
		}
		var ch mat.Cholesky
		if ch.Factorize(rev) {
			var l mat.TriDense
			ch.LTo(&l)
			if err := l.InverseTri(&l); err == nil {
				return reversed(&l, n), lambda, nil
			}
		}
		lambda *= 10
	}
	return nil, 0, fmt.Errorf("quant: gptq: %w: Hessian not positive definite after %d dampings", ErrInvalid, maxDampTries)
}

// reversed returns JLJ for the n×n lower triangle l (rows and columns
// in reverse order), an upper triangle.
func reversed(l mat.Matrix, n int) *mat.Dense {
	out := mat.NewDense(n, n, nil)
	for i := range n {
		for j := 0; j <= i; j++ {
			out.Set(n-1-i, n-1-j, l.At(i, j))
		}
	}
	return out
}
