package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// Model is a loaded ONNX model: the protobuf plus an index over its main
// graph.
type Model struct {
	Proto *onnx.ModelProto
	Graph *Graph
	// Path is the file the model was loaded from ("" for in-memory
	// models). Save refuses to overwrite it unless told to.
	Path string
	// Dir is the folder the model was loaded from ("" for in-memory
	// models); external data was resolved under it.
	Dir string
	// External names the tensors that were stored as external data when
	// loaded, with the file they came from, so that Save can keep them
	// external.
	External map[string]string
	// InputShapes fixes graph input sizes for shape inference and
	// counting (see SetInputShapes); it is never saved.
	InputShapes map[string][]int64
}

// Graph indexes a GraphProto. Nodes are in the protobuf's order, which
// Load makes topological.
type Graph struct {
	Proto  *onnx.GraphProto
	Nodes  []*Node
	values map[string]*Value
	// Inputs are the graph inputs that are not initializers (the values a
	// caller feeds), Outputs the graph outputs, in declaration order.
	Inputs  []*Value
	Outputs []*Value
}

// Node is one operator application.
type Node struct {
	Proto *onnx.NodeProto
	// Index is the node's position in Graph.Nodes.
	Index int
	// Implicit lists outer-scope values read by the node's subgraphs
	// (If/Loop/Scan bodies), which are inputs too.
	Implicit []string
}

// Value is a named tensor: a graph input, an initializer, or a node output.
type Value struct {
	Name        string
	Producer    *Node // nil for graph inputs and initializers
	Consumers   []*Node
	Initializer *onnx.TensorProto
	Sparse      *onnx.SparseTensorProto // a sparse initializer
	// Info is the declared type and shape (graph input/output or
	// value_info), or nil.
	Info     *onnx.ValueInfoProto
	IsInput  bool // a graph input (possibly with an initializer default)
	IsOutput bool
}

// Op returns the node's operator type.
func (n *Node) Op() string { return n.Proto.GetOpType() }

// Name returns the node's name, or a readable stand-in for unnamed nodes.
func (n *Node) Name() string {
	if name := n.Proto.GetName(); name != "" {
		return name
	}
	if len(n.Proto.Output) > 0 {
		return n.Op() + "->" + n.Proto.Output[0]
	}
	return fmt.Sprintf("%s#%d", n.Op(), n.Index)
}

// Domain returns the operator's domain, "" for the default ONNX domain.
func (n *Node) Domain() string {
	if d := n.Proto.GetDomain(); d != "ai.onnx" {
		return d
	}
	return ""
}

// Input returns the name of input i, or "" when absent.
func (n *Node) Input(i int) string {
	if i < len(n.Proto.Input) {
		return n.Proto.Input[i]
	}
	return ""
}

// Output returns the name of output i, or "" when absent.
func (n *Node) Output(i int) string {
	if i < len(n.Proto.Output) {
		return n.Proto.Output[i]
	}
	return ""
}

func (n *Node) String() string { return fmt.Sprintf("%s (%s)", n.Name(), n.Op()) }

// Value returns the value with the given name, or nil.
func (g *Graph) Value(name string) *Value { return g.values[name] }

// Values returns every value, in a deterministic order (graph inputs,
// initializers, then node outputs in node order).
func (g *Graph) Values() []*Value {
	seen := make(map[string]bool, len(g.values))
	var out []*Value
	add := func(name string) {
		if v := g.values[name]; v != nil && !seen[name] {
			seen[name] = true
			out = append(out, v)
		}
	}
	for _, in := range g.Proto.Input {
		add(in.GetName())
	}
	for _, t := range g.Proto.Initializer {
		add(t.GetName())
	}
	for _, n := range g.Nodes {
		for _, o := range n.Proto.Output {
			add(o)
		}
	}
	return out
}

// Initializer returns the initializer named name, or nil.
func (g *Graph) Initializer(name string) *onnx.TensorProto {
	if v := g.values[name]; v != nil {
		return v.Initializer
	}
	return nil
}

// Producer returns the node producing name, or nil.
func (g *Graph) Producer(name string) *Node {
	if v := g.values[name]; v != nil {
		return v.Producer
	}
	return nil
}

// Consumers returns the nodes reading name (explicitly or from a
// subgraph).
func (g *Graph) Consumers(name string) []*Node {
	if v := g.values[name]; v != nil {
		return v.Consumers
	}
	return nil
}

// Constant returns the tensor behind name when it is an initializer that
// is not also a graph input (which a caller could override), or the output
// of a Constant node.
func (g *Graph) Constant(name string) (*onnx.TensorProto, bool) {
	v := g.values[name]
	if v == nil {
		return nil, false
	}
	if v.Initializer != nil && !v.IsInput {
		return v.Initializer, true
	}
	if p := v.Producer; p != nil && p.Op() == "Constant" && p.Domain() == "" {
		t, err := ConstantNodeTensor(p.Proto)
		if err == nil {
			return t, true
		}
	}
	return nil, false
}

// OpsetVersion returns the model's opset version for domain ("" is the
// default ONNX domain), or 0 when not imported.
func (m *Model) OpsetVersion(domain string) int64 {
	for _, o := range m.Proto.OpsetImport {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.GetVersion()
		}
	}
	return 0
}

// NewGraph indexes gp. It fails when gp is not a valid DAG (a value
// produced twice, a cycle, or an input that nothing defines).
func NewGraph(gp *onnx.GraphProto) (*Graph, error) {
	g := &Graph{Proto: gp}
	return g, g.Reindex()
}

// Reindex rebuilds the indexes after the protobuf has been edited.
func (g *Graph) Reindex() error {
	gp := g.Proto
	g.values = make(map[string]*Value, len(gp.Node)*2+len(gp.Initializer)+len(gp.Input))
	g.Nodes = g.Nodes[:0]
	g.Inputs, g.Outputs = nil, nil
	get := func(name string) *Value {
		v := g.values[name]
		if v == nil {
			v = &Value{Name: name}
			g.values[name] = v
		}
		return v
	}
	for _, t := range gp.Initializer {
		v := get(t.GetName())
		if v.Initializer != nil {
			return fmt.Errorf("graph: %w: initializer %q appears twice", ErrInvalidModel, t.GetName())
		}
		v.Initializer = t
	}
	for _, st := range gp.SparseInitializer {
		v := get(st.GetValues().GetName())
		if v.Initializer != nil || v.Sparse != nil {
			return fmt.Errorf("graph: %w: initializer %q appears twice", ErrInvalidModel, v.Name)
		}
		v.Sparse = st
	}
	for _, in := range gp.Input {
		v := get(in.GetName())
		if v.IsInput {
			return fmt.Errorf("graph: %w: graph input %q declared twice", ErrInvalidModel, in.GetName())
		}
		v.IsInput, v.Info = true, in
		if v.Initializer == nil && v.Sparse == nil {
			g.Inputs = append(g.Inputs, v)
		}
	}
	for _, vi := range gp.ValueInfo {
		if v := get(vi.GetName()); v.Info == nil {
			v.Info = vi
		}
	}
	for i, np := range gp.Node {
		n := &Node{Proto: np, Index: i, Implicit: implicitInputs(np)}
		g.Nodes = append(g.Nodes, n)
		for _, out := range np.Output {
			if out == "" {
				continue
			}
			v := get(out)
			if v.Producer != nil || v.Initializer != nil || v.Sparse != nil || v.IsInput {
				return fmt.Errorf("graph: %w: value %q is defined twice (node %s)", ErrInvalidModel, out, n)
			}
			v.Producer = n
		}
	}
	for _, n := range g.Nodes {
		for _, in := range n.Proto.Input {
			if in != "" {
				addConsumer(get(in), n)
			}
		}
		for _, in := range n.Implicit {
			// Outer names a subgraph reads need not exist in this graph
			// when this graph is itself a subgraph.
			addConsumer(get(in), n)
		}
	}
	for _, out := range gp.Output {
		v := get(out.GetName())
		if v.IsOutput {
			return fmt.Errorf("graph: %w: graph output %q declared twice", ErrInvalidModel, out.GetName())
		}
		v.IsOutput = true
		if v.Info == nil || !v.IsInput {
			v.Info = out
		}
		g.Outputs = append(g.Outputs, v)
	}
	return nil
}

func addConsumer(v *Value, n *Node) {
	if k := len(v.Consumers); k > 0 && v.Consumers[k-1] == n {
		return // a node reading the same value twice is one consumer
	}
	v.Consumers = append(v.Consumers, n)
}

// Undefined returns the names that nodes read but nothing defines, in
// node order. Empty for a well-formed main graph.
func (g *Graph) Undefined() []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range g.Values() {
		seen[v.Name] = true
	}
	for _, n := range g.Nodes {
		for _, in := range append(append([]string{}, n.Proto.Input...), n.Implicit...) {
			if in == "" || seen[in] {
				continue
			}
			if v := g.values[in]; v != nil && v.Producer == nil && v.Initializer == nil && v.Sparse == nil && !v.IsInput {
				seen[in] = true
				out = append(out, in)
			}
		}
	}
	return out
}

// implicitInputs lists the names a node's subgraphs read from outer
// scopes, sorted by first use.
func implicitInputs(np *onnx.NodeProto) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range np.Attribute {
		var subs []*onnx.GraphProto
		if a.G != nil {
			subs = append(subs, a.G)
		}
		subs = append(subs, a.Graphs...)
		for _, sg := range subs {
			for _, name := range outerReads(sg) {
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// outerReads returns the names gp reads that it does not define itself.
func outerReads(gp *onnx.GraphProto) []string {
	defined := map[string]bool{"": true}
	for _, in := range gp.Input {
		defined[in.GetName()] = true
	}
	for _, t := range gp.Initializer {
		defined[t.GetName()] = true
	}
	for _, t := range gp.SparseInitializer {
		defined[t.GetValues().GetName()] = true
	}
	for _, n := range gp.Node {
		for _, o := range n.Output {
			defined[o] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	use := func(name string) {
		if !defined[name] && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, n := range gp.Node {
		for _, in := range n.Input {
			use(in)
		}
		for _, in := range implicitInputs(n) {
			use(in)
		}
	}
	for _, o := range gp.Output {
		use(o.GetName())
	}
	return out
}
