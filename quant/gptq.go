package quant

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
)

// gptqBlock is the number of columns GPTQ updates lazily before
// propagating their errors to the rest of the matrix (the paper's B).
const gptqBlock = 128

// maxDampTries bounds the retries with ten times more damping when the
// damped Hessian is not positive definite in floating point.
const maxDampTries = 6

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
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("quant: gptq: %w", err)
	}
	if h.Cols != w.Cols || len(h.H) == 0 || w.Rows%len(h.H) != 0 {
		return nil, fmt.Errorf("quant: gptq: %w: %d×%d weight, Hessian of %d columns in %d groups", ErrInvalid, w.Rows, w.Cols, h.Cols, len(h.H))
	}
	if opts.Damp <= 0 {
		opts.Damp = 0.01
	}
	q, err := newQuantized(s, g, w.Rows, w.Cols)
	if err != nil {
		return nil, fmt.Errorf("quant: gptq: %w", err)
	}
	if g.IsPerTensor() {
		if q.Grids[0], err = s.FitValues(w.Data); err != nil {
			return nil, fmt.Errorf("quant: gptq: %w", err)
		}
	}
	rowsPer := w.Rows / len(h.H)
	for gi, hg := range h.H {
		sub := Matrix{Rows: rowsPer, Cols: w.Cols, Data: w.Data[gi*rowsPer*w.Cols : (gi+1)*rowsPer*w.Cols]}
		if err := gptqGroup(sub, hg, q, gi*rowsPer, opts); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// gptqGroup runs GPTQ on the rows of w (rows row0… of q) with Hessian hg
// (cols×cols, row-major, not yet normalised).
func gptqGroup(w Matrix, hg []float64, q *Quantized, row0 int, opts GPTQOptions) error {
	s, g := q.Scheme, q.Gran
	rows, cols := w.Rows, w.Cols
	H := mat.NewSymDense(cols, nil)
	for i := range cols {
		for j := i; j < cols; j++ {
			H.SetSym(i, j, hg[i*cols+j])
		}
	}
	W := mat.NewDense(rows, cols, nil)
	for r := range rows {
		for c := range cols {
			W.Set(r, c, float64(w.At(r, c)))
		}
	}
	// Dead inputs: never active, so their weights do not matter.
	for i := range cols {
		if H.At(i, i) == 0 {
			H.SetSym(i, i, 1)
			for r := range rows {
				W.Set(r, i, 0)
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
		Wp := mat.NewDense(rows, cols, nil)
		for i := range cols {
			for j := i; j < cols; j++ {
				Hp.SetSym(i, j, H.At(perm[i], perm[j]))
			}
			for r := range rows {
				Wp.Set(r, i, W.At(r, perm[i]))
			}
		}
		H, W = Hp, Wp
	}
	// Grids fitted before the loop (per channel, or any act-order run)
	// come from the original weights, group by group.
	if static && !g.IsPerTensor() {
		span := g.groupCols(cols)
		for r := range rows {
			for c0 := 0; c0 < cols; c0 += span {
				vals := make([]float32, 0, span)
				for c := c0; c < min(c0+span, cols); c++ {
					vals = append(vals, w.At(r, c))
				}
				grid, err := s.FitValues(vals)
				if err != nil {
					return fmt.Errorf("quant: gptq: %w", err)
				}
				q.Grids[q.GridIndex(row0+r, c0)] = grid
			}
		}
	}
	U, err := invCholeskyUpper(H, opts.Damp)
	if err != nil {
		return err
	}
	span := g.groupCols(cols)
	errs := mat.NewDense(rows, gptqBlock, nil)
	for b0 := 0; b0 < cols; b0 += gptqBlock {
		b1 := min(b0+gptqBlock, cols)
		for i := b0; i < b1; i++ {
			orig := perm[i]
			if !static && !g.IsPerTensor() && orig%span == 0 {
				// Refit this group's grids on the updated weights.
				for r := range rows {
					vals := make([]float32, 0, span)
					for c := i; c < min(i+span, cols); c++ {
						vals = append(vals, float32(W.At(r, c)))
					}
					grid, err := s.FitValues(vals)
					if err != nil {
						return fmt.Errorf("quant: gptq: %w", err)
					}
					q.Grids[q.GridIndex(row0+r, orig)] = grid
				}
			}
			d := U.At(i, i)
			for r := range rows {
				grid := q.Grids[q.GridIndex(row0+r, orig)]
				x := W.At(r, i)
				code := s.Quantize(float32(x), grid)
				q.Q[(row0+r)*cols+orig] = code
				e := (x - float64(Dequantize(code, grid))) / d
				errs.Set(r, i-b0, e)
				for j := i + 1; j < b1; j++ {
					W.Set(r, j, W.At(r, j)-e*U.At(i, j))
				}
			}
		}
		if b1 < cols {
			var upd mat.Dense
			upd.Mul(errs.Slice(0, rows, 0, b1-b0), U.Slice(b0, b1, b1, cols))
			rest := W.Slice(0, rows, b1, cols).(*mat.Dense)
			rest.Sub(rest, &upd)
		}
	}
	return nil
}

// invCholeskyUpper damps H, inverts it (calib.DampedInverse, shared with
// OBS pruning) and returns the upper Cholesky factor U of H⁻¹ (H⁻¹ =
// UᵀU), starting again with ten times more damping when the inverse does
// not factorise.
func invCholeskyUpper(H *mat.SymDense, damp float64) (*mat.Dense, error) {
	n := H.SymmetricDim()
	mean := 0.0
	for i := range n {
		mean += H.At(i, i)
	}
	mean /= float64(n)
	if !(mean > 0) || math.IsInf(mean, 0) {
		return nil, fmt.Errorf("quant: gptq: %w: Hessian diagonal mean %v", ErrInvalid, mean)
	}
	for try := range maxDampTries {
		inv, err := calib.DampedInverse(H, damp*math.Pow(10, float64(try)))
		if err != nil {
			break
		}
		var ch mat.Cholesky
		if !ch.Factorize(inv) {
			continue
		}
		var u mat.TriDense
		ch.UTo(&u)
		U := mat.DenseCopyOf(&u)
		ok := true
		for i := range n {
			if !(U.At(i, i) > 0) {
				ok = false
			}
		}
		if ok {
			return U, nil
		}
	}
	return nil, fmt.Errorf("quant: gptq: %w: Hessian not positive definite after %d dampings", ErrInvalid, maxDampTries)
}
