package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
	ptensor "github.com/pare-dev/pare/tensor"
)

// feed binds one batch of input rows (batch-first, flattened): float32
// values for a float input, int64 token ids for a token input.
func (n *Net) feed(x any) error {
	s := n.Input.Shape()
	var data []float64
	switch x := x.(type) {
	case []float32:
		if n.tokens {
			return fmt.Errorf("grad: float input for a model that takes token ids")
		}
		data = make([]float64, len(x))
		for i, v := range x {
			data[i] = float64(v)
		}
	case []int64:
		if !n.tokens {
			return fmt.Errorf("grad: token ids for a model that takes a float input")
		}
		data = make([]float64, len(x))
		for i, v := range x {
			data[i] = float64(v)
		}
	default:
		return fmt.Errorf("grad: input of type %T", x)
	}
	if len(data) != s.TotalSize() {
		return fmt.Errorf("grad: %d input values for shape %v", len(data), s)
	}
	return G.Let(n.Input, tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(data)))
}

// Forward runs the model on one batch of input rows (or a whole
// multiple of the batch, run in chunks) and returns its output,
// flattened.
func (n *Net) Forward(x []float32) ([]float64, error) { return n.run(x) }

// ForwardTokens runs a model with a token-id input on one batch of ids
// ([batch, seq], flattened) and returns its output, flattened.
func (n *Net) ForwardTokens(ids []int64) ([]float64, error) { return n.run(ids) }

// ForwardBatch runs one batch as calibration sources hold it: float32
// values for a float input, int64 or int32 token ids for a token input.
func (n *Net) ForwardBatch(d ptensor.Dense) ([]float64, error) {
	x, err := batchData(d)
	if err != nil {
		return nil, err
	}
	return n.run(x)
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
	}
	return nil, fmt.Errorf("grad: input of type %v (float32 values or integer token ids)", d.DType)
}

// Tokens reports whether the model's input is token ids.
func (n *Net) Tokens() bool { return n.tokens }

// run runs the forward pass on x, in chunks of the net's batch when x
// holds several, and returns the outputs in order.
func (n *Net) run(x any) ([]float64, error) {
	if n.forward == nil {
		n.forward = G.NewTapeMachine(n.Graph.SubgraphRoots(n.Output))
	}
	xs, err := n.chunks(x)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, xc := range xs {
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

// chunks splits a batch of input rows (float32 values or int64 ids,
// flattened) into pieces of the net's batch size; the rows must be a
// whole multiple of it.
func (n *Net) chunks(x any) ([]any, error) {
	size := n.Input.Shape().TotalSize()
	var count int
	switch x := x.(type) {
	case []float32:
		count = len(x)
	case []int64:
		count = len(x)
	default:
		return nil, fmt.Errorf("grad: input of type %T", x)
	}
	if count == size {
		return []any{x}, nil
	}
	if count == 0 || count%size != 0 {
		return nil, fmt.Errorf("grad: %d input values for shape %v (or a whole multiple)", count, n.Input.Shape())
	}
	var out []any
	for i := 0; i < count; i += size {
		switch x := x.(type) {
		case []float32:
			out = append(out, x[i:i+size])
		case []int64:
			out = append(out, x[i:i+size])
		}
	}
	return out, nil
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
