package grad

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

// Integer and boolean values that depend only on shapes and constants
// (position ids from Range, an attention mask from Equal and Where over
// a ConstantOfShape, a token-type buffer read by GatherElements) are
// evaluated at build time, the net being built for one input shape.
// graph.InferShapes folds the small ones; the rules here take over
// where it stops (its tensors are capped at a few thousand elements, a
// causal mask of 128 positions is not), and produce what the float
// rules read through translator.ints.

// static is a build-time integer tensor (booleans are 0 and 1).
type static struct {
	shape []int
	v     []int64
}

// staticRule evaluates one node from its static inputs; out is the
// node's inferred output shape.
type staticRule func(t *translator, n *graph.Node, in []static, out []int) ([]int64, error)

var staticRules = map[string]staticRule{}

func init() {
	for op, f := range map[string]func(a, b int64) int64{
		"Add": func(a, b int64) int64 { return a + b },
		"Sub": func(a, b int64) int64 { return a - b },
		"Mul": func(a, b int64) int64 { return a * b },
		"Div": func(a, b int64) int64 {
			if b == 0 {
				return 0
			}
			return a / b
		},
		"Mod": func(a, b int64) int64 {
			if b == 0 {
				return 0
			}
			m := a % b
			if m != 0 && (m < 0) != (b < 0) { // fmod 0: the divisor's sign
				m += b
			}
			return m
		},
		"Max":            func(a, b int64) int64 { return max(a, b) },
		"Min":            func(a, b int64) int64 { return min(a, b) },
		"Equal":          func(a, b int64) int64 { return b2i(a == b) },
		"Less":           func(a, b int64) int64 { return b2i(a < b) },
		"Greater":        func(a, b int64) int64 { return b2i(a > b) },
		"LessOrEqual":    func(a, b int64) int64 { return b2i(a <= b) },
		"GreaterOrEqual": func(a, b int64) int64 { return b2i(a >= b) },
		"And":            func(a, b int64) int64 { return b2i(a != 0 && b != 0) },
		"Or":             func(a, b int64) int64 { return b2i(a != 0 || b != 0) },
		"Xor":            func(a, b int64) int64 { return b2i((a != 0) != (b != 0)) },
	} {
		staticRules[op] = elementwiseStatic(func(x []int64) int64 { return f(x[0], x[1]) })
	}
	staticRules["Where"] = elementwiseStatic(func(x []int64) int64 {
		if x[0] != 0 {
			return x[1]
		}
		return x[2]
	})
	staticRules["Not"] = elementwiseStatic(func(x []int64) int64 { return b2i(x[0] == 0) })
	staticRules["Neg"] = elementwiseStatic(func(x []int64) int64 { return -x[0] })
	staticRules["Abs"] = elementwiseStatic(func(x []int64) int64 { return max(x[0], -x[0]) })
	staticRules["Cast"] = castStatic
	staticRules["Identity"] = sameStatic
	staticRules["Reshape"] = sameStatic
	staticRules["Flatten"] = sameStatic
	staticRules["Squeeze"] = sameStatic
	staticRules["Unsqueeze"] = sameStatic
	staticRules["Expand"] = elementwiseStatic(func(x []int64) int64 { return x[0] })
	staticRules["Range"] = rangeStatic
	staticRules["ConstantOfShape"] = constantOfShapeStatic
	staticRules["Gather"] = gatherStatic
	staticRules["GatherElements"] = gatherElementsStatic
	staticRules["Slice"] = sliceStatic
	staticRules["Transpose"] = transposeStatic
	staticRules["Concat"] = concatStatic
	staticRules["Trilu"] = triluStatic
	staticRules["CumSum"] = cumSumStatic
	staticRules["GatherND"] = gatherNDStatic
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// isFloat reports whether values of data type dt are computed by the
// net (float16, float, double, bfloat16).
func isFloat(dt graph.DataType) bool { return dt == 1 || dt == 10 || dt == 11 || dt == 16 }

// evalStatic evaluates n at build time when its outputs are integers
// and its inputs are all static; false when it does not apply (a float
// output, an input computed by the net, or an op without a static
// rule).
func (t *translator) evalStatic(n *graph.Node) (bool, error) {
	f, ok := staticRules[n.Op()]
	if !ok || len(n.Proto.Output) != 1 || n.Domain() != "" {
		return false, nil
	}
	s, ok := t.shapes.Of(n.Output(0))
	if !ok || isFloat(s.Elem) {
		return false, nil
	}
	dims, known := s.Ints()
	if !known {
		return false, nil
	}
	out := ints(dims)
	if cmp, ok := floatComparisons[n.Op()]; ok && len(n.Proto.Input) == 2 {
		if v, ok := t.compareConstants(n, cmp, out); ok {
			t.statics[n.Output(0)] = static{shape: out, v: v}
			return true, nil
		}
	}
	var in []static
	for _, name := range n.Proto.Input {
		if name == "" {
			in = append(in, static{})
			continue
		}
		v, ok := t.staticValue(name)
		if !ok {
			return false, nil
		}
		in = append(in, v)
	}
	v, err := f(t, n, in, out)
	if err != nil {
		return true, err
	}
	if len(v) != total(out) {
		return true, fmt.Errorf("%w: %d values for shape %v", ErrUnsupported, len(v), out)
	}
	t.statics[n.Output(0)] = static{shape: out, v: v}
	return true, nil
}

// staticValue returns the integer tensor name when it is known at build
// time.
func (t *translator) staticValue(name string) (static, bool) {
	if s, ok := t.statics[name]; ok {
		return s, true
	}
	if _, computed := t.vals[name]; computed {
		return static{}, false
	}
	v, err := t.ints(name)
	if err != nil {
		return static{}, false
	}
	shape, err := t.intShape(name, len(v))
	if err != nil || total(shape) != len(v) {
		return static{}, false
	}
	return static{shape: shape, v: v}, true
}

func total(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// broadcastOffset maps a multi-index of the output to the offset of the
// element it reads in an input of shape in (numpy broadcasting).
func broadcastOffset(idx, in []int) int {
	off, k := 0, 1
	for a := len(in) - 1; a >= 0; a-- {
		i := idx[len(idx)-len(in)+a]
		if in[a] == 1 {
			i = 0
		}
		off += i * k
		k *= in[a]
	}
	return off
}

// elementwiseStatic applies f over the broadcast inputs.
func elementwiseStatic(f func(x []int64) int64) staticRule {
	return func(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
		if n.Op() == "Expand" {
			in = in[:1]
		}
		v := make([]int64, total(out))
		x := make([]int64, len(in))
		eachIndex(out, func(idx []int, off int) {
			for i, s := range in {
				x[i] = s.v[broadcastOffset(idx, s.shape)]
			}
			v[off] = f(x)
		})
		return v, nil
	}
}

// sameStatic keeps the values in order (the output's shape is the
// inferred one): Reshape, Flatten, Squeeze, Unsqueeze, Identity.
func sameStatic(_ *translator, _ *graph.Node, in []static, _ []int) ([]int64, error) {
	return append([]int64(nil), in[0].v...), nil
}

// castStatic converts between integer types (to bool: nonzero).
func castStatic(_ *translator, n *graph.Node, in []static, _ []int) ([]int64, error) {
	v := append([]int64(nil), in[0].v...)
	if n.IntAttr("to", 0) == 9 {
		for i, x := range v {
			v[i] = b2i(x != 0)
		}
	}
	return v, nil
}

func rangeStatic(_ *translator, _ *graph.Node, in []static, out []int) ([]int64, error) {
	v := make([]int64, out[0])
	for i := range v {
		v[i] = in[0].v[0] + int64(i)*in[2].v[0]
	}
	return v, nil
}

func constantOfShapeStatic(_ *translator, n *graph.Node, _ []static, out []int) ([]int64, error) {
	fill := int64(0)
	if a := n.Attr("value"); a != nil && a.T != nil {
		f, err := graph.Int64s(a.T)
		if err != nil || len(f) != 1 {
			return nil, fmt.Errorf("%w: ConstantOfShape value is not one integer", ErrUnsupported)
		}
		fill = f[0]
	}
	v := make([]int64, total(out))
	for i := range v {
		v[i] = fill
	}
	return v, nil
}

func normAxis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

func gatherStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	data, idx := in[0], in[1]
	axis := normAxis(n.IntAttr("axis", 0), len(data.shape))
	st := strides(data.shape)
	q := len(idx.shape)
	ist := strides(idx.shape)
	v := make([]int64, total(out))
	var err error
	eachIndex(out, func(o []int, off int) {
		k := 0
		for i := range q {
			k += o[axis+i] * ist[i]
		}
		at := int(idx.v[k])
		if at < 0 {
			at += data.shape[axis]
		}
		if at < 0 || at >= data.shape[axis] {
			err = fmt.Errorf("%w: Gather index %d outside an axis of %d", ErrUnsupported, idx.v[k], data.shape[axis])
			return
		}
		j := at * st[axis]
		for i := range axis {
			j += o[i] * st[i]
		}
		for i := axis + 1; i < len(data.shape); i++ {
			j += o[i+q-1] * st[i]
		}
		v[off] = data.v[j]
	})
	return v, err
}

// gatherElementsStatic reads data at the index along the axis, every
// other coordinate the output's own (a BERT's token-type buffer).
func gatherElementsStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	data, idx := in[0], in[1]
	axis := normAxis(n.IntAttr("axis", 0), len(data.shape))
	st := strides(data.shape)
	v := make([]int64, total(out))
	var err error
	eachIndex(out, func(o []int, off int) {
		j := 0
		for a := range o {
			i := o[a]
			if a == axis {
				i = int(idx.v[off])
				if i < 0 {
					i += data.shape[axis]
				}
				if i < 0 || i >= data.shape[axis] {
					err = fmt.Errorf("%w: GatherElements index %d outside an axis of %d", ErrUnsupported, idx.v[off], data.shape[axis])
					return
				}
			}
			j += i * st[a]
		}
		v[off] = data.v[j]
	})
	return v, err
}

func sliceStatic(t *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	x := in[0]
	rank := len(x.shape)
	starts, steps := make([]int, rank), make([]int, rank)
	for a := range steps {
		steps[a] = 1
	}
	if len(in) < 3 {
		return nil, fmt.Errorf("%w: Slice with attributes on integers", ErrUnsupported)
	}
	axes := make([]int64, len(in[1].v))
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(in) > 3 && in[3].v != nil {
		axes = in[3].v
	}
	for i, a := range axes {
		ax := normAxis(a, rank)
		d := int64(x.shape[ax])
		step := int64(1)
		if len(in) > 4 && in[4].v != nil {
			step = in[4].v[i]
		}
		s := in[1].v[i]
		if s < 0 {
			s += d
		}
		if step > 0 {
			s = max(0, min(s, d))
		} else {
			s = max(0, min(s, d-1))
		}
		starts[ax], steps[ax] = int(s), int(step)
	}
	st := strides(x.shape)
	v := make([]int64, total(out))
	eachIndex(out, func(o []int, off int) {
		j := 0
		for a := range o {
			j += (starts[a] + o[a]*steps[a]) * st[a]
		}
		v[off] = x.v[j]
	})
	return v, nil
}

func transposeStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	x := in[0]
	perm := ints(n.IntsAttr("perm", nil))
	if perm == nil {
		for i := len(x.shape) - 1; i >= 0; i-- {
			perm = append(perm, i)
		}
	}
	st := strides(x.shape)
	v := make([]int64, total(out))
	eachIndex(out, func(o []int, off int) {
		j := 0
		for i, p := range perm {
			j += o[i] * st[p]
		}
		v[off] = x.v[j]
	})
	return v, nil
}

func concatStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	axis := normAxis(n.IntAttr("axis", 0), len(out))
	outer := total(out[:axis])
	var v []int64
	for o := range outer {
		for _, p := range in {
			block := len(p.v) / max(outer, 1)
			v = append(v, p.v[o*block:(o+1)*block]...)
		}
	}
	return v, nil
}

func triluStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	k := int64(0)
	if len(in) > 1 && in[1].v != nil {
		k = in[1].v[0]
	}
	upper := n.IntAttr("upper", 1) != 0
	rows, cols := out[len(out)-2], out[len(out)-1]
	v := make([]int64, len(in[0].v))
	for off, x := range in[0].v {
		i, j := int64(off/cols%rows), int64(off%cols)
		if (upper && j-i >= k) || (!upper && j-i <= k) {
			v[off] = x
		}
	}
	return v, nil
}

// cumSumStatic sums along the axis (position ids from an attention
// mask's running count).
func cumSumStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	x := in[0]
	axis := normAxis(in[1].v[0], len(out))
	excl, rev := n.IntAttr("exclusive", 0) != 0, n.IntAttr("reverse", 0) != 0
	st := strides(out)
	v := make([]int64, len(x.v))
	eachIndex(out, func(o []int, off int) {
		if o[axis] != 0 {
			return
		}
		sum := int64(0)
		for k := range out[axis] {
			i := k
			if rev {
				i = out[axis] - 1 - k
			}
			at := off + i*st[axis]
			if excl {
				v[at] = sum
				sum += x.v[at]
			} else {
				sum += x.v[at]
				v[at] = sum
			}
		}
	})
	return v, nil
}

// isFloatValue reports whether the value name is a float tensor (by its
// inferred type; unknown counts as float).
func (t *translator) isFloatValue(name string) bool {
	s, ok := t.shapes.Of(name)
	return !ok || isFloat(s.Elem)
}

// gatherNDStatic reads data at the index tuples of the last axis of
// indices (a mask built from a running count of positions); batch_dims
// leading axes are shared by data and indices.
func gatherNDStatic(_ *translator, n *graph.Node, in []static, out []int) ([]int64, error) {
	data, idx := in[0], in[1]
	b := int(n.IntAttr("batch_dims", 0))
	k := idx.shape[len(idx.shape)-1]
	if len(idx.shape) < 1 || b+k > len(data.shape) {
		return nil, fmt.Errorf("%w: GatherND of %v by %v", ErrUnsupported, data.shape, idx.shape)
	}
	st := strides(data.shape)
	slice := total(data.shape[b+k:])
	batchSize := total(data.shape[:b])
	tuples := len(idx.v) / k / max(batchSize, 1)
	v := make([]int64, 0, total(out))
	for bi := range max(batchSize, 1) {
		base := 0
		if b > 0 {
			base = bi * st[b-1]
		}
		for j := range tuples {
			tup := idx.v[(bi*tuples+j)*k : (bi*tuples+j+1)*k]
			off := base
			for a, i := range tup {
				d := data.shape[b+a]
				if i < 0 {
					i += int64(d)
				}
				if i < 0 || i >= int64(d) {
					return nil, fmt.Errorf("%w: GatherND index %d outside an axis of %d", ErrUnsupported, tup[a], d)
				}
				off += int(i) * st[b+a]
			}
			v = append(v, data.v[off:off+slice]...)
		}
	}
	return v, nil
}

// floatComparisons are the comparisons evaluated on float build-time
// constants (a Swin's shifted-window mask compares region labels held
// as floats).
var floatComparisons = map[string]func(a, b float64) bool{
	"Equal":          func(a, b float64) bool { return a == b },
	"Less":           func(a, b float64) bool { return a < b },
	"Greater":        func(a, b float64) bool { return a > b },
	"LessOrEqual":    func(a, b float64) bool { return a <= b },
	"GreaterOrEqual": func(a, b float64) bool { return a >= b },
}

// compareConstants evaluates a comparison of which at least one operand
// is a float build-time constant and the other one is too, or a static
// integer; false when an operand is computed by the net.
func (t *translator) compareConstants(n *graph.Node, cmp func(a, b float64) bool, out []int) ([]int64, bool) {
	var vals [2][]float64
	var shapes [2][]int
	float := false
	for i := range 2 {
		name := n.Input(i)
		if c, ok := t.constValue(name); ok {
			d, err := values64(c)
			if err != nil {
				return nil, false
			}
			vals[i], float = d, true
			if dn, ok := c.(tensor.Tensor); ok {
				shapes[i] = dn.Shape().Clone()
			}
			continue
		}
		s, ok := t.staticValue(name)
		if !ok {
			return nil, false
		}
		vals[i], shapes[i] = make([]float64, len(s.v)), s.shape
		for j, x := range s.v {
			vals[i][j] = float64(x)
		}
	}
	if !float {
		return nil, false
	}
	v := make([]int64, total(out))
	eachIndex(out, func(idx []int, off int) {
		v[off] = b2i(cmp(vals[0][broadcastOffset(idx, shapes[0])], vals[1][broadcastOffset(idx, shapes[1])]))
	})
	return v, true
}
