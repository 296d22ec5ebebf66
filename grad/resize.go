package grad

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Resize"] = resizeRule
	rules["Upsample"] = resizeRule // opset 7–9: nearest is ⌊i/f⌋ as well
}

// resizeRule translates a nearest-neighbour Resize by whole factors
// (the output size a multiple of the input size on every axis, as
// shape inference gives it), which repeats every element factor times:
// output index i reads input index ⌊i/f⌋. Two coordinate modes do
// exactly that at whole factors: asymmetric with nearest_mode floor
// (i/f rounded down) and half_pixel with round_prefer_floor, the
// defaults ((i+½)/f−½ lies within ½ of ⌊i/f⌋, never at +½). Other
// modes, linear and cubic interpolation and shrinking are refused.
func resizeRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	if mode := n.StringAttr("mode", "nearest"); mode != "nearest" {
		return fmt.Errorf("%w: Resize mode %s (nearest only)", ErrUnsupported, mode)
	}
	ct := n.StringAttr("coordinate_transformation_mode", "half_pixel")
	nm := n.StringAttr("nearest_mode", "round_prefer_floor")
	if !(ct == "asymmetric" && nm == "floor") && !((ct == "half_pixel" || ct == "pytorch_half_pixel") && nm == "round_prefer_floor") {
		return fmt.Errorf("%w: Resize with coordinate_transformation_mode %s and nearest_mode %s", ErrUnsupported, ct, nm)
	}
	s, ok := t.shapes.Of(n.Output(0))
	dims, known := s.Ints()
	if !ok || !known || len(dims) != x.Dims() {
		return fmt.Errorf("%w: Resize output shape not static", ErrUnsupported)
	}
	f := make([]int, len(dims))
	for a, d := range ints(dims) {
		in := x.Shape()[a]
		if d < in || d%in != 0 {
			return fmt.Errorf("%w: Resize from %v to %v (whole upscaling factors only)", ErrUnsupported, x.Shape(), dims)
		}
		f[a] = d / in
	}
	y, err := Repeat(x, f)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// Repeat repeats every element of x f[a] times along each axis a
// (nearest-neighbour upsampling by whole factors). Its gradient sums
// each f-block of the output gradient.
func Repeat(x *G.Node, f []int) (*G.Node, error) {
	if len(f) != x.Dims() {
		return nil, fmt.Errorf("%w: %d repeat factors for rank %d", ErrUnsupported, len(f), x.Dims())
	}
	return G.ApplyOp(repeatOp{f}, x)
}

// repeatPlan is the layout of a repeat from small to small·f: the
// strides of both, and tail, the first axis after which every axis of
// small has size 1, so that from there one element of small fills a
// contiguous run of run elements (a per-channel BatchNormalization
// parameter broadcast over a plane).
type repeatPlan struct {
	small     tensor.Shape
	f         []int
	xst, yst  []int
	tail, run int
}

func newRepeatPlan(small tensor.Shape, f []int) repeatPlan {
	big := small.Clone()
	for a := range big {
		big[a] *= f[a]
	}
	p := repeatPlan{small: small, f: f, xst: strides(small), yst: strides(big), tail: len(small), run: 1}
	for p.tail > 0 && small[p.tail-1] == 1 {
		p.tail--
		p.run *= f[p.tail]
	}
	return p
}

// repeat writes into y every element of x repeated f[a] times along
// each axis a, from axis a on, at offsets xo and yo. A repeated
// sub-block is computed once and copied.
func (p repeatPlan) repeat(x, y []float64, a, xo, yo int) {
	if a == p.tail {
		run := y[yo : yo+p.run]
		for i := range run {
			run[i] = x[xo]
		}
		return
	}
	if a == len(p.small)-1 && p.f[a] == 1 {
		copy(y[yo:yo+p.small[a]], x[xo:xo+p.small[a]])
		return
	}
	for i := range p.small[a] {
		base := yo + i*p.f[a]*p.yst[a]
		p.repeat(x, y, a+1, xo+i*p.xst[a], base)
		for r := 1; r < p.f[a]; r++ {
			copy(y[base+r*p.yst[a]:base+(r+1)*p.yst[a]], y[base:base+p.yst[a]])
		}
	}
}

// sum adds to x the sum of each f-block of y, from axis a on: repeat's
// adjoint.
func (p repeatPlan) sum(y, x []float64, a, xo, yo int) {
	if a == p.tail {
		s := 0.0
		for _, v := range y[yo : yo+p.run] {
			s += v
		}
		x[xo] += s
		return
	}
	if a == len(p.small)-1 && p.f[a] == 1 {
		row := x[xo : xo+p.small[a]]
		for i, v := range y[yo : yo+p.small[a]] {
			row[i] += v
		}
		return
	}
	for i := range p.small[a] {
		for r := range p.f[a] {
			p.sum(y, x, a+1, xo+i*p.xst[a], yo+(i*p.f[a]+r)*p.yst[a])
		}
	}
}

type repeatOp struct{ f []int }

func (repeatOp) Arity() int    { return 1 }
func (repeatOp) Type() hm.Type { return sameType(1) }

func (o repeatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	out := s.Clone()
	for a := range out {
		out[a] *= o.f[a]
	}
	return out, nil
}

func (o repeatOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	out, _ := o.InferShape(s)
	y := make([]float64, out.TotalSize())
	newRepeatPlan(s, o.f).repeat(x, y, 0, 0, 0)
	return newDense(out, y), nil
}

func (repeatOp) ReturnsPtr() bool        { return false }
func (repeatOp) CallsExtern() bool       { return false }
func (repeatOp) OverwritesInput() int    { return -1 }
func (o repeatOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o repeatOp) Hashcode() uint32      { return hashString(o.String()) }
func (o repeatOp) String() string        { return fmt.Sprintf("Repeat(%v)", o.f) }
func (repeatOp) DiffWRT(int) []bool      { return []bool{true} }

func (o repeatOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(blockSumOp(o), grad)
	return G.Nodes{g}, err
}

// blockSumOp sums each f-block: the adjoint of repeatOp.
type blockSumOp struct{ f []int }

func (blockSumOp) Arity() int    { return 1 }
func (blockSumOp) Type() hm.Type { return sameType(1) }

func (o blockSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	out := s.Clone()
	for a := range out {
		out[a] /= o.f[a]
	}
	return out, nil
}

func (o blockSumOp) Do(in ...G.Value) (G.Value, error) {
	y, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	small, _ := o.InferShape(s)
	x := make([]float64, small.TotalSize())
	newRepeatPlan(small, o.f).sum(y, x, 0, 0, 0)
	return newDense(small, x), nil
}

func (blockSumOp) ReturnsPtr() bool        { return false }
func (blockSumOp) CallsExtern() bool       { return false }
func (blockSumOp) OverwritesInput() int    { return -1 }
func (o blockSumOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o blockSumOp) Hashcode() uint32      { return hashString(o.String()) }
func (o blockSumOp) String() string        { return fmt.Sprintf("BlockSum(%v)", o.f) }
func (blockSumOp) DiffWRT(int) []bool      { return []bool{true} }

func (o blockSumOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(repeatOp(o), grad)
	return G.Nodes{g}, err
}
