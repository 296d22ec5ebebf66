package grad

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
	ptensor "github.com/pare-dev/pare/tensor"
)

// feed binds one chunk of every input: xs[i] is input i's values,
// flattened, float32 for a float input and int64 for an integer one.
func (n *Net) feed(xs []any) error {
	if len(xs) != len(n.Inputs) {
		return fmt.Errorf("grad: %d inputs given, the model has %d", len(xs), len(n.Inputs))
	}
	for i, x := range xs {
		in := n.Inputs[i]
		var data []float64
		switch x := x.(type) {
		case []float32:
			if n.integer[i] {
				return fmt.Errorf("grad: float values for input %s, which takes integers", in.Name())
			}
			data = widen(x)
		case []int64:
			if !n.integer[i] {
				return fmt.Errorf("grad: integers for input %s, which takes floats", in.Name())
			}
			data = widen(x)
		default:
			return fmt.Errorf("grad: input %s of type %T", in.Name(), x)
		}
		s := in.Shape()
		if len(data) != s.TotalSize() {
			return fmt.Errorf("grad: %d values for input %s of shape %v", len(data), in.Name(), s)
		}
		if err := G.Let(in, tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(data))); err != nil {
			return err
		}
	}
	return nil
}

// widen copies one input's values into the float64 the net computes in.
func widen[T float32 | int64](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// only wraps the values of a model's only input.
func (n *Net) only(x any) ([]any, error) {
	if len(n.Inputs) != 1 {
		names := make([]string, len(n.Inputs))
		for i, in := range n.Inputs {
			names[i] = in.Name()
		}
		return nil, fmt.Errorf("grad: the model takes %d inputs (%s): give each of them", len(n.Inputs), strings.Join(names, ", "))
	}
	return []any{x}, nil
}

// Forward runs the model on one batch of input rows (or a whole
// multiple of the batch, run in chunks) and returns its output,
// flattened.
func (n *Net) Forward(x []float32) ([]float64, error) {
	xs, err := n.only(x)
	if err != nil {
		return nil, err
	}
	return n.run(xs)
}

// ForwardTokens runs a model with a token-id input on one batch of ids
// ([batch, seq], flattened) and returns its output, flattened.
func (n *Net) ForwardTokens(ids []int64) ([]float64, error) {
	xs, err := n.only(ids)
	if err != nil {
		return nil, err
	}
	return n.run(xs)
}

// ForwardInputs runs one batch of every input, by input name, as
// calibration sources hold them (a .npz of input_ids, attention_mask
// and position_ids).
func (n *Net) ForwardInputs(in map[string]ptensor.Dense) ([]float64, error) {
	xs, err := n.inputsOf(in)
	if err != nil {
		return nil, err
	}
	return n.run(xs)
}

// inputsOf orders a batch's values by the net's inputs.
func (n *Net) inputsOf(in map[string]ptensor.Dense) ([]any, error) {
	xs := make([]any, len(n.Inputs))
	for i, node := range n.Inputs {
		d, ok := in[node.Name()]
		if !ok {
			return nil, fmt.Errorf("grad: no values for input %s", node.Name())
		}
		x, err := batchData(d)
		if err != nil {
			return nil, fmt.Errorf("grad: input %s: %w", node.Name(), err)
		}
		xs[i] = x
	}
	return xs, nil
}

// batchData returns a batch's values as feed takes them.
func batchData(d ptensor.Dense) (any, error) {
	switch v := d.Data.(type) {
	case []float32, []int64:
		return v, nil
	case []int32:
		ids := make([]int64, len(v))
		for i, x := range v {
			ids[i] = int64(x)
		}
		return ids, nil
	case []bool:
		ids := make([]int64, len(v))
		for i, x := range v {
			if x {
				ids[i] = 1
			}
		}
		return ids, nil
	}
	return nil, fmt.Errorf("grad: input of type %v (float32 values or integers)", d.DType)
}

// Tokens reports whether the model's first input is token ids.
func (n *Net) Tokens() bool { return n.integer[0] }

// run runs the forward pass on xs, in chunks of the net's batch when
// they hold several, and returns the outputs in order.
func (n *Net) run(xs []any) ([]float64, error) {
	if n.forward == nil {
		n.forward = G.NewTapeMachine(n.Graph.SubgraphRoots(n.Output))
	}
	chunks, err := n.chunks(xs)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, xc := range chunks {
		n.forward.Reset()
		if err := n.feed(xc); err != nil {
			return nil, err
		}
		if err := n.forward.RunAll(); err != nil {
			return nil, err
		}
		y, err := floats(n.Output.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, y...)
	}
	n.forward.Reset()
	return out, nil
}

// chunks splits a batch of every input (float32 values or int64
// integers, flattened) into pieces of the net's batch size; the rows
// must be a whole multiple of it, the same multiple for every input.
func (n *Net) chunks(xs []any) ([][]any, error) {
	if len(xs) != len(n.Inputs) {
		return nil, fmt.Errorf("grad: %d inputs given, the model has %d", len(xs), len(n.Inputs))
	}
	k := 0
	for i, x := range xs {
		size := n.Inputs[i].Shape().TotalSize()
		count, ok := valueCount(x)
		if !ok {
			return nil, fmt.Errorf("grad: input %s of type %T", n.Inputs[i].Name(), x)
		}
		if count == 0 || count%size != 0 || (i > 0 && count != k*size) {
			return nil, fmt.Errorf("grad: %d values for input %s of shape %v (or the same whole multiple for every input)", count, n.Inputs[i].Name(), n.Inputs[i].Shape())
		}
		if i == 0 {
			k = count / size
		}
	}
	out := make([][]any, k)
	for c := range k {
		out[c] = make([]any, len(xs))
		for i, x := range xs {
			size := n.Inputs[i].Shape().TotalSize()
			out[c][i] = valueRange(x, c*size, (c+1)*size)
		}
	}
	return out, nil
}

// valueCount is the number of values of one input's float32 or int64
// slice; false for another type.
func valueCount(x any) (int, bool) {
	switch x := x.(type) {
	case []float32:
		return len(x), true
	case []int64:
		return len(x), true
	}
	return 0, false
}

// valueRange is x[lo:hi] of one input's float32 or int64 slice.
func valueRange(x any, lo, hi int) any {
	switch x := x.(type) {
	case []float32:
		return x[lo:hi]
	case []int64:
		return x[lo:hi]
	}
	return nil
}

// floats copies a float64 value out of gorgonia.
func floats(v G.Value) ([]float64, error) {
	switch v := v.(type) {
	case *G.F64:
		return []float64{float64(*v)}, nil
	case tensor.Tensor:
		d, ok := v.Data().([]float64)
		if !ok {
			return nil, fmt.Errorf("grad: value of dtype %v", v.Dtype())
		}
		return append([]float64(nil), d...), nil
	}
	return nil, fmt.Errorf("grad: value of type %T", v)
}

// WeightData returns the live float64 backing of a weight: editing it
// changes the next run.
func WeightData(w *G.Node) []float64 {
	return w.Value().Data().([]float64)
}

// WeightNames lists the trainable weights (initializer names), in
// initializer order.
func (n *Net) WeightNames() []string {
	out := make([]string, len(n.Weights))
	for i, w := range n.Weights {
		out[i] = w.Name()
	}
	return out
}

// Data returns the live float64 values of the weight name (nil when it
// is not a weight of the net); editing them changes the next run.
func (n *Net) Data(name string) []float64 {
	if w := n.byName[name]; w != nil {
		return WeightData(w)
	}
	return nil
}

// WriteBack stores the net's weights into the float32 initializers of
// the same names in m (the model the net was built from, or a copy).
func (n *Net) WriteBack(m *graph.Model) error {
	for _, w := range n.Weights {
		tp := m.Graph.Initializer(w.Name())
		if tp == nil {
			return fmt.Errorf("grad: model has no initializer %s", w.Name())
		}
		src := WeightData(w)
		out := make([]float32, len(src))
		for i, v := range src {
			out[i] = float32(v)
		}
		if err := graph.SetFloat32s(tp, tp.Dims, out); err != nil {
			return fmt.Errorf("grad: writing %s: %w", w.Name(), err)
		}
	}
	return nil
}

// TrainOnly keeps as trainable weights those whose names keep accepts;
// the others stay in the net as fixed values (an objective built after
// this takes no gradient for them, and WriteBack leaves them alone).
func (n *Net) TrainOnly(keep func(name string) bool) {
	w := n.Weights[:0]
	for _, x := range n.Weights {
		if keep(x.Name()) {
			w = append(w, x)
		} else {
			delete(n.byName, x.Name())
		}
	}
	n.Weights = w
}
