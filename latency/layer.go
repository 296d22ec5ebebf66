package latency

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
)

// shape says how a layer's weight axes meet its data input, so that a
// one-node model of the layer can be built at other widths.
type shape struct {
	layer prune.Layer
	// out and in are the weight axes that pruning shrinks (output and
	// input channels); -1 where the layer has none the grid varies.
	out, in int
	// dataAxis is the data input's axis of the input channels (tied to
	// the weight's in axis, or to out for a depthwise convolution).
	dataAxis int
	// depthwise: a Conv with one input channel per group, group = out.
	depthwise bool
}

// shapeOf classifies a layer; ok is false for layers measured at full
// size only and scaled by their MACs (grouped convolutions,
// ConvTranspose, a MatMul whose constant is the first input).
func shapeOf(l prune.Layer) (shape, bool) {
	s := shape{layer: l, out: -1, in: -1}
	n, d, x := l.Node, l.Dims, l.DataShape
	if n.Domain() != "" || len(d) < 2 || len(x) < 2 || l.Data == "" || n.Input(0) != l.Data {
		return s, false
	}
	switch n.Op() {
	case "Conv":
		g := n.IntAttr("group", 1)
		switch {
		case g == 1 && x[1] == d[1]:
			s.out, s.in, s.dataAxis = 0, 1, 1
			return s, true
		case d[1] == 1 && g == d[0] && x[1] == g:
			s.out, s.dataAxis, s.depthwise = 0, 1, true
			return s, true
		}
	case "MatMul":
		if len(d) == 2 && x[len(x)-1] == d[0] {
			s.out, s.in, s.dataAxis = 1, 0, len(x)-1
			return s, true
		}
	case "Gemm":
		if len(d) != 2 || len(x) != 2 || n.IntAttr("transA", 0) != 0 {
			return s, false
		}
		s.out, s.in, s.dataAxis = 1, 0, 1
		if n.IntAttr("transB", 0) != 0 {
			s.out, s.in = 0, 1
		}
		if x[1] != d[s.in] {
			return s, false
		}
		return s, true
	}
	return s, false
}

// variant is a layer at given weight dims: its one-node model and the
// key its measurement is cached under.
type variant struct {
	dims, data []int64
	attrs      []*onnx.AttributeProto
	op         string
	bias       int64 // bias length, 0 without
}

// at returns the layer with weight dims w (same rank as the original).
func (s shape) at(w []int64) variant {
	l := s.layer
	v := variant{dims: slices.Clone(w), data: slices.Clone(l.DataShape), op: l.Node.Op()}
	if s.in >= 0 {
		v.data[s.dataAxis] = w[s.in]
	}
	if s.depthwise {
		v.data[s.dataAxis] = w[s.out]
	}
	for _, a := range l.Node.Proto.Attribute {
		if s.depthwise && a.GetName() == "group" {
			v.attrs = append(v.attrs, build.Int("group", w[s.out]))
			continue
		}
		v.attrs = append(v.attrs, a)
	}
	if len(l.Node.Proto.Input) > 2 && l.Node.Input(2) != "" {
		v.bias = w[max(s.out, 0)]
		if s.out < 0 {
			v.bias = w[0]
		}
	}
	return v
}

// key names the measurement: the op, its attributes, the data shape and
// the weight dims determine the one-node model.
func (v variant) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s x%v w%v b%d", v.op, v.data, v.dims, v.bias)
	attrs := slices.Clone(v.attrs)
	slices.SortFunc(attrs, func(a, b *onnx.AttributeProto) int { return strings.Compare(a.GetName(), b.GetName()) })
	for _, a := range attrs {
		switch a.GetType() {
		case onnx.AttributeProto_INT:
			fmt.Fprintf(&b, " %s=%d", a.GetName(), a.GetI())
		case onnx.AttributeProto_INTS:
			fmt.Fprintf(&b, " %s=%v", a.GetName(), a.GetInts())
		case onnx.AttributeProto_FLOAT:
			fmt.Fprintf(&b, " %s=%g", a.GetName(), a.GetF())
		case onnx.AttributeProto_STRING:
			fmt.Fprintf(&b, " %s=%s", a.GetName(), a.GetS())
		}
	}
	return b.String()
}

// model builds the one-node model: a float input of the data shape, the
// layer with zero weights (none when dims is nil), a float output.
func (v variant) model() ([]byte, error) {
	b := build.New(17)
	x := b.Input("x", onnx.TensorProto_FLOAT, v.data...)
	ins := []string{x}
	if v.dims != nil {
		ins = append(ins, b.Init("w", v.dims, make([]float32, prod(v.dims))))
	}
	if v.bias > 0 {
		ins = append(ins, b.Init("b", []int64{v.bias}, make([]float32, v.bias)))
	}
	y := b.Node(v.op, ins, v.attrs...)
	out := make([]int64, len(v.data))
	for i := range out {
		out[i] = -1
	}
	b.Output(y, onnx.TensorProto_FLOAT, out...)
	m, err := b.Build()
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

func prod(d []int64) int64 {
	n := int64(1)
	for _, x := range d {
		n *= x
	}
	return n
}
