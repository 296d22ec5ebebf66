package quant

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// hessianBudget bounds the bytes of Hessians accumulated in one pass
// over the calibration data; more layers take more passes.
const hessianBudget = 512 << 20

// Hessian is calib's grouped, token-weighted Hessian accumulator, with
// the output error of a quantized weight against it.
type Hessian struct{ *calib.Hessian }

// NewHessian returns an empty accumulator.
func NewHessian(cols, groups int) *Hessian { return &Hessian{calib.NewHessian(cols, groups)} }

// Normalized returns a copy scaled to (2/N)Σ, ready for GPTQ.
func (h *Hessian) Normalized() *Hessian { return &Hessian{h.Hessian.Normalized()} }

// OutputError returns ‖X(W−Ŵ)ᵀ‖/‖XWᵀ‖ over the accumulated inputs,
// computed as sqrt(tr(ΔHΔᵀ)/tr(WHWᵀ)) with matrix products.
func (h *Hessian) OutputError(w, wq Matrix) float64 {
	rowsPer := w.Rows / len(h.H)
	c := h.Cols
	num, den := 0.0, 0.0
	for g := range h.H {
		H := mat.NewDense(c, c, h.Group(g))
		A := mat.NewDense(rowsPer, c, nil)
		D := mat.NewDense(rowsPer, c, nil)
		for r := range rowsPer {
			a, d := w.Row(g*rowsPer+r), wq.Row(g*rowsPer+r)
			for i := range c {
				A.Set(r, i, float64(a[i]))
				D.Set(r, i, float64(a[i])-float64(d[i]))
			}
		}
		var AH, DH mat.Dense
		AH.Mul(A, H)
		DH.Mul(D, H)
		num += frobeniusDot(&DH, D)
		den += frobeniusDot(&AH, A)
	}
	if den <= 0 {
		return 0
	}
	return math.Sqrt(max(num, 0) / den)
}

// outputErrorOf is OutputError for GPTQ's result q of w, given the
// trace tr((W−Ŵ)H(W−Ŵ)ᵀ) the run left (NaN when it could not tell):
// only ‖XWᵀ‖² = tr(WHWᵀ) is left to compute, as a symmetric rank update
// WᵀW (half the work of a product with H) in blocks of rows.
func (h *Hessian) outputErrorOf(w Matrix, q *Quantized, loss float64) float64 {
	if math.IsNaN(loss) {
		return h.OutputError(w, q.Dequantize())
	}
	const block = 256
	rowsPer := w.Rows / len(h.H)
	c := h.Cols
	den := 0.0
	for g := range h.H {
		gram := blas64.Symmetric{N: c, Stride: c, Uplo: blas.Upper, Data: make([]float64, c*c)}
		for r0 := 0; r0 < rowsPer; r0 += block {
			r1 := min(r0+block, rowsPer)
			a := make([]float64, (r1-r0)*c)
			for i, v := range w.Data[(g*rowsPer+r0)*c : (g*rowsPer+r1)*c] {
				a[i] = float64(v)
			}
			blas64.Syrk(blas.Trans, 1, blas64.General{Rows: r1 - r0, Cols: c, Stride: c, Data: a}, 1, gram)
		}
		// tr(H·WᵀW) from the upper triangles of both.
		hg := h.H[g]
		for i := range c {
			den += hg[i*c+i] * gram.Data[i*c+i]
			s := 0.0
			for j := i + 1; j < c; j++ {
				s += hg[i*c+j] * gram.Data[i*c+j]
			}
			den += 2 * s
		}
	}
	if den <= 0 {
		return 0
	}
	return math.Sqrt(max(loss, 0) / den)
}

// frobeniusDot returns Σ a_ij·b_ij.
func frobeniusDot(a, b *mat.Dense) float64 {
	r, c := a.Dims()
	s := 0.0
	for i := range r {
		ra, rb := a.RawRowView(i), b.RawRowView(i)
		for j := range c {
			s += ra[j] * rb[j]
		}
	}
	return s
}

// TokenWeights holds one weight per calibration sample and token, for
// layers whose input is [batch, tokens, features].
type TokenWeights [][]float64

// hessianShape describes how a layer's input becomes Hessian rows.
type hessianShape struct {
	cols, groups int
}

func layerHessianShape(l *Layer) (*hessianShape, error) {
	if err := l.Unfoldable(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return &hessianShape{cols: l.In(), groups: l.Groups()}, nil
}

// CollectHessians runs the float model over data and accumulates the
// input Hessian of each layer it can (MatMul, Gemm, 2-D Conv with
// explicit padding); others are absent from the result. weights, when
// given for a layer, weight its input tokens (RSQ).
func CollectHessians(ctx context.Context, m *graph.Model, layers []*Layer, data Dataset, weights map[*Layer]TokenWeights, batch int) (map[*Layer]*Hessian, error) {
	return collectHessians(layers, weights, func(names []string, visit visitFunc) error {
		return capture(ctx, m, data, names, batch, visit)
	})
}

// visitFunc receives one run's captured values, its first sample and its
// number of samples.
type visitFunc = func(vals map[string]tensor.Dense, first, rows int) error

// collectHessians is CollectHessians over the values run captures.
// Layers that read the same input with the same weighting (Q, K and V
// projections) share one Hessian, accumulated once.
func collectHessians(layers []*Layer, weights map[*Layer]TokenWeights, run func(names []string, visit visitFunc) error) (map[*Layer]*Hessian, error) {
	out := map[*Layer]*Hessian{}
	shapes := map[*Layer]*hessianShape{}
	// owner maps a layer to the one whose Hessian it shares.
	owner := map[*Layer]*Layer{}
	first := map[string]*Layer{}
	var todo []*Layer
	for _, l := range layers {
		hs, err := layerHessianShape(l)
		if err != nil {
			continue
		}
		shapes[l] = hs
		owner[l] = l
		if key, ok := l.RowsKey(); ok && weights[l] == nil {
			if o, ok := first[key]; ok {
				owner[l] = o
				continue
			}
			first[key] = l
		}
		todo = append(todo, l)
	}
	for len(todo) > 0 {
		// Take layers while their Hessians fit the budget (at least one).
		var pass []*Layer
		bytes := 0
		for len(todo) > 0 {
			hs := shapes[todo[0]]
			size := 8 * hs.cols * hs.cols * hs.groups
			if len(pass) > 0 && bytes+size > hessianBudget {
				break
			}
			bytes += size
			pass = append(pass, todo[0])
			todo = todo[1:]
		}
		acc := map[*Layer]*Hessian{}
		seen := map[string]bool{}
		var names []string
		for _, l := range pass {
			acc[l] = NewHessian(shapes[l].cols, shapes[l].groups)
			if !seen[l.Input()] {
				seen[l.Input()] = true
				names = append(names, l.Input())
			}
		}
		err := run(names, func(vals map[string]tensor.Dense, first, _ int) error {
			for _, l := range pass {
				d, ok := vals[l.Input()]
				if !ok {
					continue
				}
				if err := addLayerInput(acc[l], l, d, weights[l], first); err != nil {
					return fmt.Errorf("quant: layer %s: %w", l.Node, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for l, h := range acc {
			out[l] = h
		}
	}
	for l, o := range owner {
		out[l] = out[o]
	}
	return out, nil
}

// addLayerInput adds one batch of a layer's input to its Hessian: Conv
// patches per group, other rows weighted by their tokens' weights.
func addLayerInput(h *Hessian, l *Layer, d tensor.Dense, tw TokenWeights, offset int) error {
	x, err := d.Float64s()
	if err != nil {
		return err
	}
	if l.Desc.Spatial {
		n0 := h.N
		if err := l.Patches(d.Shape, x, func(_, g int, rows []float64) { h.AddRows(g, rows, nil) }); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		// Every group saw the same positions: N counts them once.
		h.N = n0 + (h.N-n0)/float64(l.Groups())
		return nil
	}
	if len(x)%l.In() != 0 {
		return fmt.Errorf("%w: input %v does not end in %d features", ErrInvalid, d.Shape, l.In())
	}
	var w []float64
	if tw != nil && len(d.Shape) == 3 {
		b, t := int(d.Shape[0]), int(d.Shape[1])
		w = make([]float64, 0, b*t)
		for i := range b {
			if offset+i >= len(tw) || len(tw[offset+i]) != t {
				w = nil
				break
			}
			w = append(w, tw[offset+i]...)
		}
	}
	h.AddRows(0, x, w)
	return nil
}
