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

// visit calls f(xOff, yOff) for every input/output position pair that
// filter tap (ky, kx) connects, over one input and one output plane.
func (g convGeom) visit(d convDims, ky, kx int, f func(xOff, yOff int)) {
	for oy := range d.oh {
		iy := oy*g.sh - g.ph + ky*g.dh
		if iy < 0 || iy >= d.h {
			continue
		}
		for ox := range d.ow {
			ix := ox*g.sw - g.pw + kx*g.dw
			if ix < 0 || ix >= d.w {
				continue
			}
			f(iy*d.w+ix, oy*d.ow+ox)
		}
	}
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
	taps := o.g.kh * o.g.kw
	parallel(d.n*d.co, func(i int) {
		n, oc := i/d.co, i%d.co
		yp := y[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
		first := oc / d.cpg * d.ci
		for ic := range d.ci {
			xp := x[(n*d.c+first+ic)*d.h*d.w:][:d.h*d.w]
			for t := range taps {
				k := w[(oc*d.ci+ic)*taps+t]
				o.g.visit(d, t/o.g.kw, t%o.g.kw, func(xo, yo int) { yp[yo] += k * xp[xo] })
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
	taps := o.g.kh * o.g.kw
	// One (sample, group) at a time: only that group's output channels
	// write to its input channels.
	parallel(d.n*o.g.groups, func(i int) {
		n, gr := i/o.g.groups, i%o.g.groups
		for oc := gr * d.cpg; oc < (gr+1)*d.cpg; oc++ {
			dyp := dy[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
			for ic := range d.ci {
				dxp := dx[(n*d.c+gr*d.ci+ic)*d.h*d.w:][:d.h*d.w]
				for t := range taps {
					k := w[(oc*d.ci+ic)*taps+t]
					o.g.visit(d, t/o.g.kw, t%o.g.kw, func(xo, yo int) { dxp[xo] += k * dyp[yo] })
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
	taps := o.g.kh * o.g.kw
	parallel(d.co, func(oc int) {
		first := oc / d.cpg * d.ci
		for n := range d.n {
			dyp := dy[(n*d.co+oc)*d.oh*d.ow:][:d.oh*d.ow]
			for ic := range d.ci {
				xp := x[(n*d.c+first+ic)*d.h*d.w:][:d.h*d.w]
				for t := range taps {
					s := 0.0
					o.g.visit(d, t/o.g.kw, t%o.g.kw, func(xo, yo int) { s += xp[xo] * dyp[yo] })
					dw[(oc*d.ci+ic)*taps+t] += s
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
