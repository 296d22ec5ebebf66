package calib

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// Layer is a weighted layer (graph.Weighted) with a constant float
// weight, seen as a matrix W[out, in] that multiplies input rows x[in]:
// a Conv (W [O, I/group, k...]; in is (input channel, kernel position)
// of an unfolded patch, per group), a Gemm (transA 0) or a MatMul
// (rank-2 weight). Calibration data becomes rows (Rows, Patches) for
// 2-D Convs with explicit pads, Gemms and MatMuls.
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

	// conv is the unfolding geometry of a 2-D Conv, nil when the Conv
	// cannot be unfolded (convErr says why).
	conv    *convGeom
	convErr error

	// part is the group a part of a grouped Conv views (GroupParts), of
	// parts; parts is 0 for a whole layer.
	part, parts int
}

// View returns the [out, in] view of n: a Conv of any rank and group
// count, a Gemm (transA 0) or a MatMul with a rank-2 weight, whose weight
// is a constant float tensor; or an error saying why n is not one.
func View(g *graph.Graph, n *graph.Node) (*Layer, error) {
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
	if len(t.Dims) < 3 {
		return nil, fmt.Errorf("calib: %s: Conv weight rank %d", n, len(t.Dims))
	}
	for _, k := range t.Dims[2:] {
		l.Inner *= int(k)
	}
	l.conv, l.convErr = newConvGeom(n, l.Dims, d.Group)
	return l, nil
}

// NewLayer returns the layer view of n when it is one the pruning side
// re-fits and scores: as View, with Convs 2-D, ungrouped and explicitly
// padded; or an error saying why n is not supported.
func NewLayer(g *graph.Graph, n *graph.Node) (*Layer, error) {
	l, err := View(g, n)
	if err != nil || !l.Desc.Spatial {
		return l, err
	}
	switch {
	case len(l.Dims) != 4:
		return nil, fmt.Errorf("calib: %s: only 2-D Conv", n)
	case l.Desc.Group != 1:
		return nil, fmt.Errorf("calib: %s: grouped Conv", n)
	case l.convErr != nil:
		return nil, fmt.Errorf("calib: %s: %w", n, l.convErr)
	}
	return l, nil
}

// GroupParts returns one layer per group of a grouped 2-D Conv with
// explicit pads: part j is W[j·M/g : (j+1)·M/g] seen as [M/g, in] over
// the patches of input channels [j·C/g, (j+1)·C/g). Each group is a
// layer of its own for a least-squares refit; the weight stays one
// tensor (SetMatrix writes the part's rows only).
func GroupParts(g *graph.Graph, n *graph.Node) ([]*Layer, error) {
	l, err := View(g, n)
	if err != nil {
		return nil, err
	}
	groups := int(l.Desc.Group)
	switch {
	case !l.Desc.Spatial || len(l.Dims) != 4:
		return nil, fmt.Errorf("calib: %s: only 2-D Conv", n)
	case groups < 2 || int(l.Dims[0])%groups != 0:
		return nil, fmt.Errorf("calib: %s: not a grouped Conv", n)
	case l.convErr != nil:
		return nil, fmt.Errorf("calib: %s: %w", n, l.convErr)
	}
	out := make([]*Layer, groups)
	for j := range out {
		p := *l
		p.Dims = slices.Clone(l.Dims)
		p.Dims[0] /= int64(groups)
		p.part, p.parts = j, groups
		out[j] = &p
	}
	return out, nil
}

// Part returns the group a part views and the group count (0, 0 for a
// whole layer).
func (l *Layer) Part() (part, parts int) { return l.part, l.parts }

// Key names the layer, or the part of one, uniquely in its graph.
func (l *Layer) Key() string {
	if l.parts == 0 {
		return l.Node.Name()
	}
	return PartKey(l.Node.Name(), l.part)
}

// PartKey is the Key of part j of the grouped Conv node.
func PartKey(node string, j int) string { return fmt.Sprintf("%s#%d", node, j) }

// Unfoldable reports whether calibration data can become rows of the
// layer (Rows, Patches), and if not why.
func (l *Layer) Unfoldable() error {
	if l.Desc.Spatial {
		return l.convErr
	}
	return nil
}

// Groups is the number of input groups of the layer (1 but for grouped
// Convs); each has In() columns.
func (l *Layer) Groups() int { return int(l.Desc.Group) }

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

// RowsKey names the rows Rows makes of the layer's input, so that
// layers with the same rows can share statistics on them (a decoder's
// Q, K and V projections; its gate and up): a Gemm or MatMul's rows are
// its input's last axis, the same for every layer reading that value. A
// Conv's rows depend on its kernel, strides and pads too: ok is false.
func (l *Layer) RowsKey() (key string, ok bool) {
	if l.Desc.Spatial {
		return "", false
	}
	return fmt.Sprintf("%s/%d", l.Input(), l.In()), true
}

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
	// The float64 copy is what the caller reads: a weight in a mapped
	// data file need not stay resident behind it (a decoder's OBS reads
	// every projection once per group it scores).
	defer graph.Release(t)
	r, c := l.Out(), l.In()
	v = v[l.part*r*c:] // a part's rows (a Conv weight is never transposed)
	out := make([]float64, r*c)
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
	if l.parts > 0 {
		// The other groups' rows stay as they are.
		all, err := graph.Float32s(t)
		if err != nil {
			return err
		}
		v = slices.Clone(all)
		graph.Release(t)
	}
	at := v[l.part*r*c:]
	for i := range r {
		for j := range c {
			if l.T {
				at[j*r+i] = float32(w[i*c+j])
			} else {
				at[i*c+j] = float32(w[i*c+j])
			}
		}
	}
	return graph.SetFloat32s(t, t.Dims, v)
}

// Rows turns one batch of the layer's input into rows of In() values:
// Conv inputs [N, C, H, W] are unfolded into one patch per output
// position (ungrouped Convs only); Gemm/MatMul inputs are flattened to
// [rows, In()].
func (l *Layer) Rows(d tensor.Dense) ([]float64, error) {
	return l.RowsInto(nil, d)
}

// RowsInto is Rows writing into buf's storage where it is large enough.
// A caller that is done with one batch's rows before the next passes
// them back: a Conv's unfolded rows are several times its input, and a
// fresh allocation per batch (and per layer) was most of a CNN prune's
// system time, in page faults.
func (l *Layer) RowsInto(buf []float64, d tensor.Dense) ([]float64, error) {
	if !l.Desc.Spatial {
		x, err := d.Float64sInto(buf)
		if err != nil {
			return nil, err
		}
		if len(x)%l.In() != 0 {
			return nil, fmt.Errorf("calib: %s: input %v does not end in %d features", l.Node, d.Shape, l.In())
		}
		return x, nil
	}
	if l.Groups() != 1 && l.parts == 0 {
		return nil, fmt.Errorf("calib: %s: grouped Conv", l.Node)
	}
	x, err := d.Float64s()
	if err != nil {
		return nil, err
	}
	rows := buf[:0]
	err = l.Patches(d.Shape, x, func(_, g int, r []float64) {
		if g != l.part {
			return // another group's part (part is 0 for an ungrouped Conv)
		}
		if len(rows) == 0 && len(d.Shape) > 0 {
			// Every sample unfolds to as many rows: room for all.
			rows = slices.Grow(rows, len(r)*int(d.Shape[0]))
		}
		rows = append(rows, r...)
	})
	return rows, err
}

// Patches unfolds the input x (shape [N, C, H, W]) of a 2-D Conv into
// rows of In() values (channel, then kernel row, then kernel column,
// like the weight), one per output position, and hands visit those of
// each sample b and group g in turn (the slice is reused).
func (l *Layer) Patches(shape []int64, x []float64, visit func(b, g int, rows []float64)) error {
	c := l.conv
	if c == nil {
		if l.convErr != nil {
			return fmt.Errorf("calib: %s: %w", l.Node, l.convErr)
		}
		return fmt.Errorf("calib: %s: not a Conv", l.Node)
	}
	if len(shape) != 4 || int(shape[1]) != c.cin*c.group {
		return fmt.Errorf("calib: %s: input %v for %d×%d input channels", l.Node, shape, c.group, c.cin)
	}
	n, hh, ww := int(shape[0]), int(shape[2]), int(shape[3])
	oh := (hh+c.pt+c.pb-c.dh*(c.kh-1)-1)/c.sh + 1
	ow := (ww+c.pl+c.pr-c.dw*(c.kw-1)-1)/c.sw + 1
	if oh <= 0 || ow <= 0 {
		return nil
	}
	rows := make([]float64, 0, oh*ow*c.cin*c.kh*c.kw)
	for b := range n {
		for g := range c.group {
			rows = rows[:0]
			for y := range oh {
				for xo := range ow {
					for ci := range c.cin {
						plane := x[((b*c.cin*c.group)+g*c.cin+ci)*hh*ww:]
						for ky := range c.kh {
							iy := y*c.sh - c.pt + ky*c.dh
							for kx := range c.kw {
								ix := xo*c.sw - c.pl + kx*c.dw
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
			visit(b, g, rows)
		}
	}
	return nil
}

// convGeom is the geometry of a 2-D Conv, for unfolding its input into
// the patches its weight rows multiply.
type convGeom struct {
	cin, kh, kw int // input channels per group, kernel
	group       int
	sh, sw      int
	dh, dw      int
	pt, pl      int
	pb, pr      int
}

// Errors of a Conv whose input cannot be unfolded.
var (
	errConvRank    = errors.New("only 2-D Conv unfolds")
	errConvAutoPad = errors.New("auto_pad")
	errConvAttr    = errors.New("invalid Conv attribute")
)

func newConvGeom(n *graph.Node, dims []int64, group int64) (*convGeom, error) {
	if len(dims) != 4 {
		return nil, fmt.Errorf("%w: %d-D Conv", errConvRank, len(dims)-2)
	}
	if ap := n.StringAttr("auto_pad", "NOTSET"); ap != "NOTSET" {
		return nil, fmt.Errorf("%w %s", errConvAutoPad, ap)
	}
	ints := func(name string, def []int64) []int64 {
		v := n.IntsAttr(name, def)
		if len(v) != len(def) {
			return def
		}
		return v
	}
	s := ints("strides", []int64{1, 1})
	d := ints("dilations", []int64{1, 1})
	p := ints("pads", []int64{0, 0, 0, 0})
	g := int(group)
	if g < 1 || int(dims[0])%g != 0 {
		return nil, fmt.Errorf("%w: group %d", errConvAttr, g)
	}
	for _, v := range append(append(s, d...), p...) {
		if v < 0 || v > 1<<20 {
			return nil, fmt.Errorf("%w: value %d", errConvAttr, v)
		}
	}
	if s[0] == 0 || s[1] == 0 || d[0] == 0 || d[1] == 0 {
		return nil, fmt.Errorf("%w: zero stride or dilation", errConvAttr)
	}
	return &convGeom{
		cin: int(dims[1]), kh: int(dims[2]), kw: int(dims[3]), group: g,
		sh: int(s[0]), sw: int(s[1]), dh: int(d[0]), dw: int(d[1]),
		pt: int(p[0]), pl: int(p[1]), pb: int(p[2]), pr: int(p[3]),
	}, nil
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
