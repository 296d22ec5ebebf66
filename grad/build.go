package grad

import (
	"errors"
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

// ErrUnsupported marks a model that cannot be made differentiable: an
// op without a translation rule, an attribute value the rule does not
// handle, or a shape that is not static at the chosen batch size.
var ErrUnsupported = errors.New("grad: unsupported model")

// Net is a model translated into a gorgonia expression graph for one
// batch size.
type Net struct {
	Graph *G.ExprGraph
	// Input is the model's first input, batch-first: the pixels, or the
	// token ids of a transformer.
	Input *G.Node
	// Inputs are all the model's inputs in graph order (Input first):
	// an export's attention_mask, position_ids or token_type_ids besides
	// the ids, held as float64 values like the ids.
	Inputs []*G.Node
	// Output is the model's first output (a decoder's logits beside the
	// key/value cache it returns), what losses compare.
	Output *G.Node
	// Weights are the float initializers that training may change, in
	// initializer order, keyed by initializer name in byName.
	Weights []*G.Node
	byName  map[string]*G.Node
	model   *graph.Model
	batch   int
	forward G.VM // the forward pass alone, made on first use
	// objective is set once NewObjective has added a loss: gorgonia
	// differentiates a graph once.
	objective bool
	// integer: Inputs[i] takes integers (ids, masks, positions), held
	// as float64 values; integer[0] means token ids (Tokens).
	integer []bool
}

// translator carries the state of one Build.
type translator struct {
	m      *graph.Model
	shapes *graph.Shapes
	g      *G.ExprGraph
	vals   map[string]*G.Node // float values by ONNX name
	net    *Net
	// frozen are initializers read as statistics, not weights
	// (BatchNormalization running mean and variance).
	frozen map[string]bool
	// consts are float values known at build time (Constant outputs
	// and what folds from them: a decoder's rotary tables and causal
	// mask), by ONNX name.
	consts map[string]G.Value
	// folding: the translator evaluates one node on build-time
	// constants (fold.go).
	folding bool
	// statics are integer values evaluated at build time that shape
	// inference did not fold (static.go), by ONNX name.
	statics map[string]static
}

// rule translates one node: it reads its inputs from t.vals and stores
// its outputs there.
type rule func(t *translator, n *graph.Node) error

// rules maps ONNX op types (default domain) to their translation.
var rules = map[string]rule{}

// Supported reports whether op (default ONNX domain) has a rule.
func Supported(op string) bool { _, ok := rules[op]; return ok }

// Build translates m for inputs of batch rows. Every input must be
// float or integer (token ids, an attention mask, position ids) with
// every axis but the batch fixed. The model is not modified.
func Build(m *graph.Model, batch int) (*Net, error) {
	return BuildShape(m, []int64{int64(batch)})
}

// BuildShape translates m for inputs of the given shape: the batch
// first, then the first input's free axes (a decoder's sequence
// length), or the batch alone when the other axes are fixed in the
// model. The other inputs' free axes take the sizes of the first
// input's axes of the same name (an export's "batch" and "seq"). The
// net's Output is the model's first output, which losses compare; other
// outputs are computed, not read.
func BuildShape(m *graph.Model, shape []int64) (*Net, error) {
	return build(m, shape, nil)
}

// BuildInputs translates m for inputs of the given shapes, by input
// name, the batch first in each: the data's own shapes, for inputs whose
// free sizes are not those of the first input (a key/value cache's past
// length). An input not named takes its sizes as BuildShape gives them.
func BuildInputs(m *graph.Model, shapes map[string][]int64) (*Net, error) {
	if len(m.Graph.Inputs) == 0 {
		return nil, fmt.Errorf("%w: no inputs", ErrUnsupported)
	}
	first, ok := shapes[m.Graph.Inputs[0].Name]
	if !ok {
		return nil, fmt.Errorf("grad: no shape for input %s", m.Graph.Inputs[0].Name)
	}
	return build(m, first, shapes)
}

func build(m *graph.Model, shape []int64, given map[string][]int64) (*Net, error) {
	g := m.Graph
	if len(g.Inputs) == 0 || len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: %d inputs and %d outputs", ErrUnsupported, len(g.Inputs), len(g.Outputs))
	}
	dims, integer, err := inputShapes(g.Inputs, shape, given)
	if err != nil {
		return nil, err
	}
	shapes, err := ShapesAt(m, dims)
	if err != nil {
		return nil, err
	}
	t := &translator{m: m, shapes: shapes, g: G.NewGraph(), vals: map[string]*G.Node{}, frozen: map[string]bool{},
		consts: map[string]G.Value{}, statics: map[string]static{}}
	first := g.Inputs[0].Name
	t.net = &Net{Graph: t.g, byName: map[string]*G.Node{}, model: m, batch: int(dims[first][0]), integer: integer}
	for _, in := range g.Inputs {
		d := dims[in.Name]
		x := G.NewTensor(t.g, G.Float64, len(d), G.WithShape(ints(d)...), G.WithName(in.Name))
		t.net.Inputs = append(t.net.Inputs, x)
		t.vals[in.Name] = x
	}
	t.net.Input = t.net.Inputs[0]
	for _, n := range g.Nodes {
		if n.Op() == "BatchNormalization" {
			t.frozen[n.Input(3)], t.frozen[n.Input(4)] = true, true
		}
	}
	for _, n := range g.Nodes {
		if t.folded(n) {
			continue
		}
		if done, err := t.evalStatic(n); done {
			if err != nil {
				return nil, fmt.Errorf("node %s (%s): %w", n.Name(), n.Op(), err)
			}
			continue
		}
		r, ok := rules[n.Op()]
		if !ok || n.Domain() != "" {
			return nil, fmt.Errorf("%w: op %s (node %s) has no gradient rule", ErrUnsupported, n.Op(), n.Name())
		}
		if t.constantInputs(n) {
			err = t.fold(r, n)
		} else {
			err = r(t, n)
		}
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", n.Name(), n.Op(), err)
		}
	}
	out := g.Outputs[0].Name
	if t.net.Output, err = t.value(out); err != nil {
		return nil, err
	}
	return t.net, nil
}

// inputShapes fixes every input's shape: the first input's from shape
// (inputDims), the others' from given when it names them, else their
// free axes from the first's axes of the same dim name. integer[i]
// reports that input i takes integers.
func inputShapes(inputs []*graph.Value, shape []int64, given map[string][]int64) (dims map[string][]int64, integer []bool, err error) {
	dims = map[string][]int64{}
	named := map[string]int64{}
	for i, in := range inputs {
		ts, ok := graph.ShapeFromInfo(in.Info)
		if !ok || !ts.Ranked {
			return nil, nil, fmt.Errorf("%w: input %s has no ranked shape", ErrUnsupported, in.Name)
		}
		// Integers (ids, masks, positions; int64, int32 or bool) index
		// tables or build masks; the net holds them as float64 values.
		isInt := ts.Elem == graph.DataType(7) || ts.Elem == graph.DataType(6) || ts.Elem == graph.DataType(9)
		if ts.Elem != graph.DataType(1) && !isInt {
			return nil, nil, fmt.Errorf("%w: input %s is neither a float tensor nor integers (data type %d)", ErrUnsupported, in.Name, ts.Elem)
		}
		integer = append(integer, isInt)
		var d []int64
		if i == 0 {
			if d, err = inputDims(in.Name, ts, shape); err != nil {
				return nil, nil, err
			}
			for j, dim := range ts.Dims {
				if dim.IsSymbolic() {
					named[dim.Symbol()] = d[j]
				}
			}
		} else if full, ok := given[in.Name]; ok {
			if d, err = inputDims(in.Name, ts, full); err != nil {
				return nil, nil, err
			}
			if len(full) != len(ts.Dims) {
				return nil, nil, fmt.Errorf("%w: input %s has rank %d, data %v", ErrUnsupported, in.Name, len(ts.Dims), full)
			}
		} else if d, err = otherDims(in.Name, ts, named, shape[0]); err != nil {
			return nil, nil, err
		}
		dims[in.Name] = d
	}
	return dims, integer, nil
}

// otherDims fixes a further input's shape: its fixed axes kept, a free
// axis sized by the first input's axis of the same name, a free first
// axis by the batch.
func otherDims(name string, ts graph.TensorShape, named map[string]int64, batch int64) ([]int64, error) {
	dims := make([]int64, len(ts.Dims))
	for i, d := range ts.Dims {
		v, known := d.Value()
		switch {
		case known:
		case d.IsSymbolic() && named[d.Symbol()] > 0:
			v = named[d.Symbol()]
		case i == 0:
			v = batch
		default:
			return nil, fmt.Errorf("%w: input %s dim %d (%q) is not fixed and names no axis of the first input", ErrUnsupported, name, i, d.Symbol())
		}
		dims[i] = v
	}
	return dims, nil
}

// inputDims fixes the input's shape: the batch from shape[0], the free
// axes from the rest of shape in order, the model's fixed axes kept (a
// full shape must agree with them).
func inputDims(name string, ts graph.TensorShape, shape []int64) ([]int64, error) {
	if len(shape) == 0 || shape[0] <= 0 {
		return nil, fmt.Errorf("grad: input %s: no batch size given", name)
	}
	full := len(shape) == len(ts.Dims)
	dims := make([]int64, len(ts.Dims))
	next := 1
	for i, d := range ts.Dims {
		v, known := d.Value()
		switch {
		case i == 0:
			v = shape[0]
		case full:
			if known && v != shape[i] {
				return nil, fmt.Errorf("%w: input %s dim %d is %d, data has %d", ErrUnsupported, name, i, v, shape[i])
			}
			v = shape[i]
		case !known && next < len(shape):
			v = shape[next]
			next++
		case !known:
			return nil, fmt.Errorf("%w: input %s dim %d is not fixed (give the input's full shape)", ErrUnsupported, name, i)
		}
		dims[i] = v
	}
	return dims, nil
}

// ShapesAt runs shape inference with the inputs fixed to dims, restoring
// the model's own fixed shapes afterwards.
func ShapesAt(m *graph.Model, dims map[string][]int64) (*graph.Shapes, error) {
	saved := m.InputShapes
	defer func() { m.InputShapes = saved }()
	if err := m.SetInputShapes(dims); err != nil {
		return nil, err
	}
	return graph.InferShapes(m)
}

// folded reports whether every output of n is a statically known
// integer tensor (a shape computation), which needs no gorgonia node.
func (t *translator) folded(n *graph.Node) bool {
	if n.Op() == "Constant" {
		return true
	}
	for _, o := range n.Proto.Output {
		s, ok := t.shapes.Of(o)
		if !ok || s.Elem == graph.DataType(1) {
			return false
		}
		if _, ok := t.shapes.IntValue(o); !ok {
			return false
		}
	}
	return len(n.Proto.Output) > 0
}

// value returns the gorgonia node of the float value name, creating a
// weight (or a constant, for frozen statistics) for initializers.
func (t *translator) value(name string) (*G.Node, error) {
	if v, ok := t.vals[name]; ok {
		return v, nil
	}
	if c, ok := t.constValue(name); ok {
		n := constNode(t.g, name, c)
		t.vals[name] = n
		return n, nil
	}
	tp, ok := t.m.Graph.Constant(name)
	if !ok {
		return nil, fmt.Errorf("%w: value %s is not available", ErrUnsupported, name)
	}
	f, err := graph.Float32s(tp)
	if err != nil {
		return nil, fmt.Errorf("%w: value %s: %v", ErrUnsupported, name, err)
	}
	data := make([]float64, len(f))
	for i, x := range f {
		data[i] = float64(x)
	}
	var n *G.Node
	if len(tp.Dims) == 0 {
		n = G.NewScalar(t.g, G.Float64, G.WithName(name), G.WithValue(data[0]))
	} else {
		shape := ints(tp.Dims)
		val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		n = G.NewTensor(t.g, G.Float64, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(val))
	}
	t.vals[name] = n
	isInit := t.m.Graph.Initializer(name) != nil
	if isInit && !t.frozen[name] && len(tp.Dims) > 0 {
		t.net.Weights = append(t.net.Weights, n)
		t.net.byName[name] = n
	}
	return n, nil
}

// ints returns the static integer tensor name (an initializer, a
// Constant output or a folded shape computation).
func (t *translator) ints(name string) ([]int64, error) {
	if s, ok := t.statics[name]; ok {
		return append([]int64(nil), s.v...), nil
	}
	if tp, ok := t.m.Graph.Constant(name); ok {
		return graph.Int64s(tp)
	}
	ds, ok := t.shapes.IntValue(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a static integer tensor", ErrUnsupported, name)
	}
	out := make([]int64, len(ds))
	for i, d := range ds {
		v, ok := d.Value()
		if !ok {
			return nil, fmt.Errorf("%w: %s is not static", ErrUnsupported, name)
		}
		out[i] = v
	}
	return out, nil
}

// set stores the node's output i.
func (t *translator) set(n *graph.Node, i int, v *G.Node) { t.vals[n.Output(i)] = v }

// in returns the node's float input i.
func (t *translator) in(n *graph.Node, i int) (*G.Node, error) { return t.value(n.Input(i)) }

// staticDims is the inferred shape of n's first output, which the rules
// that reshape to it need fixed.
func (t *translator) staticDims(n *graph.Node) ([]int, error) {
	s, ok := t.shapes.Of(n.Output(0))
	dims, known := s.Ints()
	if !ok || !known {
		return nil, fmt.Errorf("%w: output shape not static", ErrUnsupported)
	}
	return ints(dims), nil
}

func ints(d []int64) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}

// Weight returns the node of the initializer name, or nil when it is not
// a trainable weight of the net.
func (n *Net) Weight(name string) *G.Node { return n.byName[name] }

// Batch is the batch size the net was built for.
func (n *Net) Batch() int { return n.batch }

// setInferred stores v as the node's output i, reshaped to its
// statically inferred shape.
func (t *translator) setInferred(n *graph.Node, i int, v *G.Node) error {
	s, ok := t.shapes.Of(n.Output(i))
	dims, known := s.Ints()
	if !ok || !known {
		return fmt.Errorf("%w: output %s shape not static", ErrUnsupported, n.Output(i))
	}
	if !slices.Equal([]int(v.Shape()), ints(dims)) {
		var err error
		if v, err = G.Reshape(v, ints(dims)); err != nil {
			return err
		}
	}
	t.set(n, i, v)
	return nil
}
