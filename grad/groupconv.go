package grad

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GroupConv is a 2-D convolution with groups (depthwise when every
// group has one input channel) as one gorgonia op: gorgonia's Conv2d
// has no groups, and one Conv2d per group made a depthwise layer of C
// channels C separate im2col products. x is [N, C, H, W], w is
// [Co, C/groups, kh, kw]; pad, stride and dil are (height, width).
func GroupConv(x, w *G.Node, groups int, pad, stride, dil []int) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) != 4 || len(ws) != 4 {
		return nil, fmt.Errorf("%w: grouped conv of ranks %d and %d", ErrUnsupported, len(xs), len(ws))
	}
	if groups < 1 || xs[1]%groups != 0 || ws[0]%groups != 0 || ws[1]*groups != xs[1] {
		return nil, fmt.Errorf("%w: %d groups over %d→%d channels (filter %v)", ErrUnsupported, groups, xs[1], ws[0], ws)
	}
	g := convGeom{groups: groups, kh: ws[2], kw: ws[3], ph: pad[0], pw: pad[1], sh: stride[0], sw: stride[1], dh: dil[0], dw: dil[1]}
	return G.ApplyOp(groupConvOp{g}, x, w)
}

// convGeom is the geometry of a grouped convolution.
type convGeom struct {
	groups, kh, kw, ph, pw, sh, sw, dh, dw int
}

func (g convGeom) String() string {
	return fmt.Sprintf("g%d k%dx%d p%d,%d s%d,%d d%d,%d", g.groups, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.dh, g.dw)
}

// out is the output height and width for an input of h×w.
func (g convGeom) out(h, w int) (int, int) {
	return (h+2*g.ph-g.dh*(g.kh-1)-1)/g.sh + 1, (w+2*g.pw-g.dw*(g.kw-1)-1)/g.sw + 1
}

// dims of one convolution: input [n, c, h, w], output [n, co, oh, ow],
// ci input and cpg output channels per group.
type convDims struct{ n, c, h, w, co, oh, ow, ci, cpg int }

func (g convGeom) dims(x, w tensor.Shape) convDims {
	oh, ow := g.out(x[2], x[3])
	return convDims{n: x[0], c: x[1], h: x[2], w: x[3], co: w[0], oh: oh, ow: ow, ci: x[1] / g.groups, cpg: w[0] / g.groups}
}

// tapSpan is what one filter tap (ky, kx) connects over one input and
// one output plane: output rows oy0..oy1-1 and columns ox0..ox1-1 read
// the input inside the plane, output (oy, ox) reading input offset
// x0 + oy·rowStep + ox·sw. The ops walk these ranges directly: a
// closure per position cost more than the multiply it wrapped.
type tapSpan struct{ oy0, oy1, ox0, ox1, x0, rowStep, sw int }

func (g convGeom) tap(d convDims, ky, kx int) tapSpan {
	offY, offX := ky*g.dh-g.ph, kx*g.dw-g.pw // input row and column under output (0, 0)
	return tapSpan{
		oy0: max(ceilDiv(-offY, g.sh), 0), oy1: min(floorDiv(d.h-1-offY, g.sh)+1, d.oh),
		ox0: max(ceilDiv(-offX, g.sw), 0), ox1: min(floorDiv(d.w-1-offX, g.sw)+1, d.ow),
		x0: offY*d.w + offX, rowStep: g.sh * d.w, sw: g.sw,
	}
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// Each row of a tap's span is one BLAS level-1 call: the input
// positions of a row are sw apart, its output positions adjacent.

// axpy adds k·x at the tap's input positions to y at its output
// positions (the forward pass), ow output columns a row.
func (s tapSpan) axpy(k float64, x, y []float64, ow int) {
	n := s.ox1 - s.ox0
	for oy := s.oy0; n > 0 && oy < s.oy1; oy++ {
		blasImpl.Daxpy(n, k, x[s.x0+oy*s.rowStep+s.ox0*s.sw:], s.sw, y[oy*ow+s.ox0:], 1)
	}
}

// scatter adds k·dy at the tap's output positions to dx at its input
// positions (the input gradient).
func (s tapSpan) scatter(k float64, dy, dx []float64, ow int) {
	n := s.ox1 - s.ox0
	for oy := s.oy0; n > 0 && oy < s.oy1; oy++ {
		blasImpl.Daxpy(n, k, dy[oy*ow+s.ox0:], 1, dx[s.x0+oy*s.rowStep+s.ox0*s.sw:], s.sw)
	}
}

// dot is Σ x·dy over the tap's position pairs (the filter gradient).
func (s tapSpan) dot(x, dy []float64, ow int) float64 {
	n, sum := s.ox1-s.ox0, 0.0
	for oy := s.oy0; n > 0 && oy < s.oy1; oy++ {
		sum += blasImpl.Ddot(n, x[s.x0+oy*s.rowStep+s.ox0*s.sw:], s.sw, dy[oy*ow+s.ox0:], 1)
	}
	return sum
}

// taps returns the span of every filter tap, in filter order.
func (g convGeom) taps(d convDims) []tapSpan {
	out := make([]tapSpan, 0, g.kh*g.kw)
	for ky := range g.kh {
		for kx := range g.kw {
			out = append(out, g.tap(d, ky, kx))
		}
	}
	return out
}

type groupConvOp struct{ g convGeom }

func (groupConvOp) Arity() int { return 2 }

func (groupConvOp) Type() hm.Type { return sameType(2) }

func (o groupConvOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	w, err := shapeOf(in[1])
	if err != nil {
		return nil, err
	}
	oh, ow := o.g.out(x[2], x[3])
	return tensor.Shape{x[0], w[0], oh, ow}, nil
}

func (o groupConvOp) Do(in ...G.Value) (G.Value, error) {
	x, xs, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	w, ws, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	d := o.g.dims(xs, ws)
	y := make([]float64, d.n*d.co*d.oh*d.ow)
	spans := o.g.taps(d)
	if gemmWorth(d) {
		convGemm(o.g, d, spans, x, w, y)
		return newDense(tensor.Shape{d.n, d.co, d.oh, d.ow}, y), nil
	}
	taps := len(spans)
	parallel(d.n*d.co, func(i int) {
		n, oc := i/d.co, i%d.co
		yp := y[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
		first := oc / d.cpg * d.ci
		for ic := range d.ci {
			xp := x[(n*d.c+first+ic)*d.h*d.w:][:d.h*d.w]
			for t := range taps {
				spans[t].axpy(w[(oc*d.ci+ic)*taps+t], xp, yp, d.ow)
			}
		}
	})
	return newDense(tensor.Shape{d.n, d.co, d.oh, d.ow}, y), nil
}

func (groupConvOp) ReturnsPtr() bool        { return false }
func (groupConvOp) CallsExtern() bool       { return false }
func (groupConvOp) OverwritesInput() int    { return -1 }
func (o groupConvOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o groupConvOp) Hashcode() uint32      { return hashString(o.String()) }
func (o groupConvOp) String() string        { return "GroupConv(" + o.g.String() + ")" }

func (groupConvOp) DiffWRT(int) []bool { return []bool{true, true} }

// SymDiff: the input's gradient is the transposed convolution of the
// output gradient with the filters, the filters' gradient the
// correlation of the input with the output gradient.
func (o groupConvOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(convInputGradOp{g: o.g, x: in[0].Shape().Clone()}, in[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(convFilterGradOp{g: o.g, w: in[1].Shape().Clone()}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw}, nil
}

// convInputGradOp(w, dy) is the gradient of a grouped convolution with
// respect to its input of shape x.
type convInputGradOp struct {
	g convGeom
	x tensor.Shape
}

func (convInputGradOp) Arity() int { return 2 }

func (convInputGradOp) Type() hm.Type { return sameType(2) }

func (o convInputGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.x.Clone(), nil }

func (o convInputGradOp) Do(in ...G.Value) (G.Value, error) {
	w, ws, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	dy, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	d := o.g.dims(o.x, ws)
	dx := make([]float64, o.x.TotalSize())
	spans := o.g.taps(d)
	if gemmWorth(d) {
		convGemmInputGrad(o.g, d, spans, w, dy, dx)
		return newDense(o.x, dx), nil
	}
	taps := len(spans)
	// One (sample, group) at a time: only that group's output channels
	// write to its input channels.
	parallel(d.n*o.g.groups, func(i int) {
		n, gr := i/o.g.groups, i%o.g.groups
		for oc := gr * d.cpg; oc < (gr+1)*d.cpg; oc++ {
			dyp := dy[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
			for ic := range d.ci {
				dxp := dx[(n*d.c+gr*d.ci+ic)*d.h*d.w:][:d.h*d.w]
				for t := range taps {
					spans[t].scatter(w[(oc*d.ci+ic)*taps+t], dyp, dxp, d.ow)
				}
			}
		}
	})
	return newDense(o.x, dx), nil
}

func (convInputGradOp) ReturnsPtr() bool        { return false }
func (convInputGradOp) CallsExtern() bool       { return false }
func (convInputGradOp) OverwritesInput() int    { return -1 }
func (o convInputGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o convInputGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o convInputGradOp) String() string {
	return fmt.Sprintf("GroupConvInputGrad(%s %v)", o.g, o.x)
}
func (convInputGradOp) DiffWRT(int) []bool { return []bool{false, false} }
func (convInputGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("GroupConvInputGrad")
}

// convFilterGradOp(x, dy) is the gradient of a grouped convolution with
// respect to its filters of shape w.
type convFilterGradOp struct {
	g convGeom
	w tensor.Shape
}

func (convFilterGradOp) Arity() int { return 2 }

func (convFilterGradOp) Type() hm.Type { return sameType(2) }

func (o convFilterGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.w.Clone(), nil }

func (o convFilterGradOp) Do(in ...G.Value) (G.Value, error) {
	x, xs, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	dy, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	d := o.g.dims(xs, o.w)
	dw := make([]float64, o.w.TotalSize())
	spans := o.g.taps(d)
	if gemmWorth(d) {
		convGemmFilterGrad(o.g, d, spans, x, dy, dw)
		return newDense(o.w, dw), nil
	}
	taps := len(spans)
	parallel(d.co, func(oc int) {
		first := oc / d.cpg * d.ci
		for n := range d.n {
			dyp := dy[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
			for ic := range d.ci {
				xp := x[(n*d.c+first+ic)*d.h*d.w:][:d.h*d.w]
				for t := range taps {
					dw[(oc*d.ci+ic)*taps+t] += spans[t].dot(xp, dyp, d.ow)
				}
			}
		}
	})
	return newDense(o.w, dw), nil
}

func (convFilterGradOp) ReturnsPtr() bool        { return false }
func (convFilterGradOp) CallsExtern() bool       { return false }
func (convFilterGradOp) OverwritesInput() int    { return -1 }
func (o convFilterGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o convFilterGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o convFilterGradOp) String() string {
	return fmt.Sprintf("GroupConvFilterGrad(%s %v)", o.g, o.w)
}
func (convFilterGradOp) DiffWRT(int) []bool { return []bool{false, false} }
func (convFilterGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("GroupConvFilterGrad")
}
