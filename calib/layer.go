package calib

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// Layer is a Conv (2-D, group 1, explicit pads), Gemm (transA 0) or
// MatMul (rank-2 weight) node with a constant float weight, seen as a
// matrix W[out, in] that multiplies input rows x[in]: for Conv, in is
// (input channel, kernel row, kernel column) of an unfolded patch.
type Layer struct {
	Node   *graph.Node
	Weight string
	Dims   []int64
	// Desc says which input is the weight and bias and which axes run
	// over output and input channels.
	Desc graph.Weighted
	// T: the stored weight is [in, out] (MatMul, Gemm without transB).
	T bool
	// Inner is the number of columns per input channel (kernel size for
	// Conv, 1 otherwise).
	Inner int

	sh, sw, dh, dw, pt, pl, pb, pr, kh, kw int
}

// NewLayer returns the layer view of n, or an error saying why n is not
// supported.
func NewLayer(g *graph.Graph, n *graph.Node) (*Layer, error) {
	if n.Domain() != "" {
		return nil, fmt.Errorf("calib: %s: custom op", n)
	}
	d, ok := graph.WeightedOf(n)
	if !ok || d.Spatial && d.Transposed || d.InputTransposed {
		return nil, fmt.Errorf("calib: %s: not a Conv, Gemm (transA 0) or MatMul", n)
	}
	w := d.Weight()
	t, ok := g.Constant(w)
	if !ok || graph.DataTypeOf(t) != onnx.TensorProto_FLOAT {
		return nil, fmt.Errorf("calib: %s: weight is not a constant float tensor", n)
	}
	l := &Layer{Node: n, Weight: w, Dims: append([]int64(nil), t.Dims...), Desc: d, T: d.Transposed, Inner: 1}
	if !d.Spatial {
		if len(t.Dims) != 2 {
			return nil, fmt.Errorf("calib: %s: weight rank %d", n, len(t.Dims))
		}
		return l, nil
	}
	if len(t.Dims) != 4 {
		return nil, fmt.Errorf("calib: %s: only 2-D Conv", n)
	}
	if d.Group != 1 {
		return nil, fmt.Errorf("calib: %s: grouped Conv", n)
	}
	if ap := n.StringAttr("auto_pad", "NOTSET"); ap != "NOTSET" {
		return nil, fmt.Errorf("calib: %s: auto_pad %s", n, ap)
	}
	ints := func(name string, def []int64) []int {
		v := n.IntsAttr(name, def)
		if len(v) != len(def) {
			v = def
		}
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out
	}
	s, dl, p := ints("strides", []int64{1, 1}), ints("dilations", []int64{1, 1}), ints("pads", []int64{0, 0, 0, 0})
	l.sh, l.sw, l.dh, l.dw = s[0], s[1], dl[0], dl[1]
	l.pt, l.pl, l.pb, l.pr = p[0], p[1], p[2], p[3]
	l.kh, l.kw = int(t.Dims[2]), int(t.Dims[3])
	l.Inner = l.kh * l.kw
	return l, nil
}

// Out and In are the sizes of the [out, in] view.
func (l *Layer) Out() int {
	if l.T {
		return int(l.Dims[1])
	}
	return int(l.Dims[0])
}

// In is the number of columns of the [out, in] view.
func (l *Layer) In() int {
	if l.T {
		return int(l.Dims[0])
	}
	n := 1
	for _, d := range l.Dims[1:] {
		n *= int(d)
	}
	return n
}

// Input is the activation the layer multiplies.
func (l *Layer) Input() string { return l.Node.Input(0) }

// Matrix returns W[out, in] row-major in float64.
func (l *Layer) Matrix(g *graph.Graph) ([]float64, error) {
	t, ok := g.Constant(l.Weight)
	if !ok {
		return nil, fmt.Errorf("calib: %s: weight %q gone", l.Node, l.Weight)
	}
	v, err := graph.Float32s(t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(v))
	r, c := l.Out(), l.In()
	for i := range r {
		for j := range c {
			if l.T {
				out[i*c+j] = float64(v[j*r+i])
			} else {
				out[i*c+j] = float64(v[i*c+j])
			}
		}
	}
	return out, nil
}

// SetMatrix stores W[out, in] back into the weight.
func (l *Layer) SetMatrix(g *graph.Graph, w []float64) error {
	t, ok := g.Constant(l.Weight)
	if !ok {
		return fmt.Errorf("calib: %s: weight %q gone", l.Node, l.Weight)
	}
	r, c := l.Out(), l.In()
	v := make([]float32, len(w))
	for i := range r {
		for j := range c {
			if l.T {
				v[j*r+i] = float32(w[i*c+j])
			} else {
				v[i*c+j] = float32(w[i*c+j])
			}
		}
	}
	return graph.SetFloat32s(t, t.Dims, v)
}

// Rows turns one batch of the layer's input into rows of In() values:
// Conv inputs [N, C, H, W] are unfolded into one patch per output
// position; Gemm/MatMul inputs are flattened to [rows, In()].
func (l *Layer) Rows(d tensor.Dense) ([]float64, error) {
	x, err := d.Float64s()
	if err != nil {
		return nil, err
	}
	if !l.Desc.Spatial {
		if len(x)%l.In() != 0 {
			return nil, fmt.Errorf("calib: %s: input %v does not end in %d features", l.Node, d.Shape, l.In())
		}
		return x, nil
	}
	cin := int(l.Dims[1])
	if len(d.Shape) != 4 || int(d.Shape[1]) != cin {
		return nil, fmt.Errorf("calib: %s: input %v for %d channels", l.Node, d.Shape, cin)
	}
	n, hh, ww := int(d.Shape[0]), int(d.Shape[2]), int(d.Shape[3])
	oh := (hh+l.pt+l.pb-l.dh*(l.kh-1)-1)/l.sh + 1
	ow := (ww+l.pl+l.pr-l.dw*(l.kw-1)-1)/l.sw + 1
	if oh <= 0 || ow <= 0 {
		return nil, nil
	}
	cols := cin * l.kh * l.kw
	rows := make([]float64, 0, n*oh*ow*cols)
	for b := range n {
		for y := range oh {
			for xo := range ow {
				for ci := range cin {
					plane := x[(b*cin+ci)*hh*ww:]
					for ky := range l.kh {
						iy := y*l.sh - l.pt + ky*l.dh
						for kx := range l.kw {
							ix := xo*l.sw - l.pl + kx*l.dw
							v := 0.0
							if iy >= 0 && iy < hh && ix >= 0 && ix < ww {
								v = plane[iy*ww+ix]
							}
							rows = append(rows, v)
						}
					}
				}
			}
		}
	}
	return rows, nil
}

// Layers returns the supported layers of m by node name.
func Layers(g *graph.Graph) map[string]*Layer {
	out := map[string]*Layer{}
	for _, n := range g.Nodes {
		if !graph.IsWeighted(n) {
			continue
		}
		if l, err := NewLayer(g, n); err == nil {
			out[n.Name()] = l
		}
	}
	return out
}

// InAxis is the axis of the stored weight that runs over input channels.
func (l *Layer) InAxis() int { return l.Desc.InAxis }

// OutAxis is the axis of the stored weight that runs over output
// channels.
func (l *Layer) OutAxis() int { return l.Desc.OutAxis }

// ChannelAxis is the axis of the layer's output over output channels:
// 1 for Conv, -1 (last) for Gemm/MatMul.
func (l *Layer) ChannelAxis() int { return l.Desc.ChannelAxis }

// Columns returns the [out, in] columns that input channel positions ps
// (on InAxis) occupy.
func (l *Layer) Columns(ps []int) []int {
	out := make([]int, 0, len(ps)*l.Inner)
	for _, p := range ps {
		for k := range l.Inner {
			out = append(out, p*l.Inner+k)
		}
	}
	return out
}
