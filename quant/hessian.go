package quant

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// hessianBudget bounds the bytes of Hessians accumulated in one pass
// over the calibration data; more layers take more passes.
const hessianBudget = 512 << 20

// Hessian accumulates H = (2/N) Σ w_t x_t x_tᵀ over the input rows x_t of
// a layer (Conv: unfolded patches), one matrix per input group.
type Hessian struct {
	Cols int
	// H holds one Cols×Cols row-major sum per group.
	H [][]float64
	// N is the total weight of the rows added.
	N float64
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
	sum := mat.NewSymDense(h.Cols, h.H[g])
	sum.SymRankK(sum, 1, mat.NewDense(m, h.Cols, x).T())
}

// normalized returns group g's H = (2/N)·Σ, full (both triangles).
func (h *Hessian) normalized(g int) []float64 {
	out := make([]float64, len(h.H[g]))
	if h.N == 0 {
		return out
	}
	f := 2 / h.N
	c := h.Cols
	for i := range c {
		for j := i; j < c; j++ {
			v := h.H[g][i*c+j] * f
			out[i*c+j], out[j*c+i] = v, v
		}
	}
	return out
}

// Normalized returns a copy scaled to (2/N)Σ, ready for GPTQ.
func (h *Hessian) Normalized() *Hessian {
	out := &Hessian{Cols: h.Cols, N: h.N, H: make([][]float64, len(h.H))}
	for g := range h.H {
		out.H[g] = h.normalized(g)
	}
	return out
}

// OutputError returns ‖X(W−Ŵ)ᵀ‖/‖XWᵀ‖ over the accumulated inputs,
// computed as sqrt(tr(ΔHΔᵀ)/tr(WHWᵀ)) with matrix products.
func (h *Hessian) OutputError(w, wq Matrix) float64 {
	rowsPer := w.Rows / len(h.H)
	c := h.Cols
	num, den := 0.0, 0.0
	for g := range h.H {
		H := mat.NewDense(c, c, h.normalized(g))
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
	conv         *convGeom
}

func layerHessianShape(m *graph.Model, l *Layer) (*hessianShape, error) {
	if !l.Desc.Spatial {
		return &hessianShape{cols: l.In(), groups: 1}, nil
	}
	cg, err := newConvGeom(l)
	if err != nil {
		return nil, err
	}
	return &hessianShape{cols: l.In(), groups: cg.group, conv: cg}, nil
}

// CollectHessians runs the float model over data and accumulates the
// input Hessian of each layer it can (MatMul, Gemm, 2-D Conv with
// explicit padding); others are absent from the result. weights, when
// given for a layer, weight its input tokens (RSQ).
func CollectHessians(ctx context.Context, m *graph.Model, layers []*Layer, data Dataset, weights map[*Layer]TokenWeights, batch int) (map[*Layer]*Hessian, error) {
	out := map[*Layer]*Hessian{}
	shapes := map[*Layer]*hessianShape{}
	var todo []*Layer
	for _, l := range layers {
		hs, err := layerHessianShape(m, l)
		if err != nil {
			continue
		}
		shapes[l] = hs
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
		err := capture(ctx, m, data, names, batch, func(vals map[string]tensor.Dense, first, _ int) error {
			for _, l := range pass {
				d, ok := vals[l.Input()]
				if !ok {
					continue
				}
				if err := addLayerInput(acc[l], shapes[l], d, weights[l], first); err != nil {
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
	return out, nil
}

// addLayerInput adds one batch of a layer's input to its Hessian.
func addLayerInput(h *Hessian, hs *hessianShape, d tensor.Dense, tw TokenWeights, offset int) error {
	x, err := d.Float64s()
	if err != nil {
		return err
	}
	if hs.conv != nil {
		return hs.conv.addPatches(h, d.Shape, x)
	}
	if len(x)%hs.cols != 0 {
		return fmt.Errorf("%w: input %v does not end in %d features", ErrInvalid, d.Shape, hs.cols)
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
