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

// repeatInto writes into y (shape small·f) every element of x (shape
// small) repeated f[a] times along each axis a, from axis a on, at
// offsets xo and yo. A repeated sub-block is computed once and copied:
// the copies are memmoves, not an index computed per element.
func repeatInto(x, y []float64, small tensor.Shape, f, xst, yst []int, a, xo, yo int) {
	last := a == len(small)-1
	if last && f[a] == 1 {
		copy(y[yo:yo+small[a]], x[xo:xo+small[a]])
		return
	}
	for i := range small[a] {
		base := yo + i*f[a]*yst[a]
		if last {
			v := x[xo+i]
			run := y[base : base+f[a]]
			for r := range run {
				run[r] = v
			}
			continue
		}
		repeatInto(x, y, small, f, xst, yst, a+1, xo+i*xst[a], base)
		for r := 1; r < f[a]; r++ {
			copy(y[base+r*yst[a]:base+(r+1)*yst[a]], y[base:base+yst[a]])
		}
	}
}

// sumBlocks adds to x (shape small) the sum of each f-block of y (shape
// small·f), from axis a on: repeatInto's adjoint.
func sumBlocks(y, x []float64, small tensor.Shape, f, xst, yst []int, a, xo, yo int) {
	last := a == len(small)-1
	if last && f[a] == 1 {
		row := x[xo : xo+small[a]]
		for i, v := range y[yo : yo+small[a]] {
			row[i] += v
		}
		return
	}
	for i := range small[a] {
		for r := range f[a] {
			at := yo + (i*f[a]+r)*yst[a]
			if last {
				x[xo+i] += y[at]
				continue
			}
			sumBlocks(y, x, small, f, xst, yst, a+1, xo+i*xst[a], at)
		}
	}
}

// repeatStrides are the row-major strides of small and of small·f.
func repeatStrides(small tensor.Shape, f []int) (xst, yst []int) {
	big := small.Clone()
	for a := range big {
		big[a] *= f[a]
	}
	return strides(small), strides(big)
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
	if len(s) > 0 {
		xst, yst := repeatStrides(s, o.f)
		repeatInto(x, y, s, o.f, xst, yst, 0, 0, 0)
	} else {
		copy(y, x)
	}
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
	if len(small) > 0 {
		xst, yst := repeatStrides(small, o.f)
		sumBlocks(y, x, small, o.f, xst, yst, 0, 0, 0)
	} else {
		copy(x, y)
	}
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
