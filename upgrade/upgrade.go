package upgrade

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Oldest and Newest bound the opsets To converts between.
const (
	Oldest = 7
	Newest = 21
)

// ErrUnsupported marks a model or node To cannot convert. errors.Is also
// matches graph.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("%w: opset upgrade", graph.ErrUnsupported)

// Report says what an upgrade changed.
type Report struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Rewritten counts the rewritten nodes by op type (before the
	// rewrite).
	Rewritten map[string]int `json:"rewritten,omitempty"`
}

// Changed reports whether the model's opset was raised.
func (r *Report) Changed() bool { return r != nil && r.To > r.From }

// Nodes returns the number of rewritten nodes.
func (r *Report) Nodes() int {
	n := 0
	for _, c := range r.Rewritten {
		n += c
	}
	return n
}

func (r *Report) String() string {
	if !r.Changed() {
		return fmt.Sprintf("opset %d unchanged", r.From)
	}
	return fmt.Sprintf("opset %d → %d (%d nodes rewritten)", r.From, r.To, r.Nodes())
}

// rule rewrites one node for the step from c.from to c.to. It mutates
// n.Proto and records new nodes and constants through c; it reports
// whether it changed anything.
type rule func(c *conv, n *graph.Node) (bool, error)

// rules maps an op type to its rule. Ops not listed kept their signature
// and meaning from opset 7 to 21 (newer versions only add types or
// optional attributes/inputs whose defaults keep the old behaviour).
var rules = map[string]rule{}

func register(r rule, ops ...string) {
	for _, op := range ops {
		rules[op] = r
	}
}

// To raises the default-domain opset of m to target in place. A model at
// target or above is left alone. On error m is unchanged.
func To(m *graph.Model, target int64) (*Report, error) {
	from := m.OpsetVersion("")
	rep := &Report{From: from, To: from}
	if from >= target {
		return rep, nil
	}
	if from < Oldest {
		return nil, fmt.Errorf("upgrade: %w: default opset %d (the oldest converted is %d)", ErrUnsupported, from, Oldest)
	}
	if target > Newest {
		return nil, fmt.Errorf("upgrade: %w: target opset %d (the newest known is %d)", ErrUnsupported, target, Newest)
	}
	// Work on a copy so that a refusal leaves m as it was.
	mp := proto.Clone(m.Proto).(*onnx.ModelProto)
	g, err := graph.NewGraph(mp.Graph)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	work := &graph.Model{Proto: mp, Graph: g, Path: m.Path, Dir: m.Dir, External: m.External}
	c := newConv(work, from, target)
	rep.Rewritten = map[string]int{}
	for _, n := range work.Graph.Nodes {
		if n.Domain() != "" {
			continue
		}
		if hasSubgraph(n) {
			return nil, fmt.Errorf("upgrade: node %q (%s): %w: subgraphs are not converted", n.Name(), n.Op(), ErrUnsupported)
		}
		r := rules[n.Op()]
		if r == nil {
			continue
		}
		op := n.Op()
		changed, err := r(c, n)
		if err != nil {
			return nil, fmt.Errorf("upgrade: node %q (%s), opset %d → %d: %w", n.Name(), op, from, target, err)
		}
		if changed {
			rep.Rewritten[op]++
		}
	}
	if err := c.apply(); err != nil {
		return nil, err
	}
	setOpset(work.Proto, target)
	if ir := irVersion(target); work.Proto.GetIrVersion() < ir {
		work.Proto.IrVersion = &ir
	}
	if err := work.Graph.Reindex(); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	*m = *work
	rep.To = target
	return rep, nil
}

// irVersion is the lowest IR version that may import opset v.
func irVersion(v int64) int64 {
	switch {
	case v >= 21:
		return 10
	case v >= 19:
		return 9
	case v >= 15:
		return 8
	case v >= 12:
		return 7
	case v >= 11:
		return 6
	case v >= 10:
		return 5
	case v >= 9:
		return 4
	}
	return 3
}

func hasSubgraph(n *graph.Node) bool {
	for _, a := range n.Proto.Attribute {
		if a.G != nil || len(a.Graphs) > 0 {
			return true
		}
	}
	return false
}

func setOpset(mp *onnx.ModelProto, v int64) {
	for _, o := range mp.OpsetImport {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			o.Version = &v
			return
		}
	}
	d := ""
	mp.OpsetImport = append(mp.OpsetImport, &onnx.OperatorSetIdProto{Domain: &d, Version: &v})
}

// crosses reports whether the step from c.from to c.to passes version v
// (the first opset with the new form).
func (c *conv) crosses(v int64) bool { return c.from < v && c.to >= v }

// conv holds one conversion's pending edits.
type conv struct {
	m        *graph.Model
	from, to int64
	used     map[string]bool
	before   map[*onnx.NodeProto][]*onnx.NodeProto
	after    map[*onnx.NodeProto][]*onnx.NodeProto
	consts   []*onnx.TensorProto
	// asNodes writes new constants as Constant nodes, for models that
	// keep every constant that way (no initializers).
	asNodes bool
	shapes  *graph.Shapes
}

func newConv(m *graph.Model, from, to int64) *conv {
	c := &conv{m: m, from: from, to: to, used: map[string]bool{},
		before: map[*onnx.NodeProto][]*onnx.NodeProto{}, after: map[*onnx.NodeProto][]*onnx.NodeProto{}}
	for _, v := range m.Graph.Values() {
		c.used[v.Name] = true
	}
	for _, n := range m.Graph.Nodes {
		c.used[n.Proto.GetName()] = true
	}
	c.asNodes = len(m.Proto.Graph.Initializer) == 0
	return c
}

// name returns a fresh name derived from base.
func (c *conv) name(base string) string {
	if !c.used[base] {
		c.used[base] = true
		return base
	}
	for i := 1; ; i++ {
		if s := base + "_" + strconv.Itoa(i); !c.used[s] {
			c.used[s] = true
			return s
		}
	}
}

// constant adds a constant tensor and returns its name.
func (c *conv) constant(t *onnx.TensorProto) string {
	name := c.name(t.GetName())
	t.Name = &name
	c.consts = append(c.consts, t)
	return name
}

func (c *conv) int64s(base string, v []int64) string {
	return c.constant(graph.Int64Tensor(base, []int64{int64(len(v))}, v))
}

// scalar adds a rank-0 constant of element type dt holding v.
func (c *conv) scalar(base string, dt graph.DataType, v float64) (string, error) {
	t, err := floatTensor(base, dt, nil, []float64{v})
	if err != nil {
		return "", err
	}
	return c.constant(t), nil
}

// node makes a node with a fresh name.
func (c *conv) node(op, base string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	name := c.name(base)
	return &onnx.NodeProto{Name: &name, OpType: &op, Input: in, Output: out, Attribute: attrs}
}

// elemType returns the element type of tensor t, FLOAT when unknown.
func (c *conv) elemType(t string) graph.DataType {
	if ct, ok := c.m.Graph.Constant(t); ok {
		return graph.DataTypeOf(ct)
	}
	if s, ok := c.inferred(t); ok && s.Elem != onnx.TensorProto_UNDEFINED {
		return s.Elem
	}
	return onnx.TensorProto_FLOAT
}

// inferred returns the statically inferred shape of t in the original
// model.
func (c *conv) inferred(t string) (graph.TensorShape, bool) {
	if c.shapes == nil {
		s, err := graph.InferShapes(c.m)
		if err != nil {
			s = &graph.Shapes{}
		}
		c.shapes = s
	}
	return c.shapes.Of(t)
}

// apply writes the pending nodes and constants into the graph.
func (c *conv) apply() error {
	gp := c.m.Proto.Graph
	var nodes []*onnx.NodeProto
	if c.asNodes {
		for _, t := range c.consts {
			name := t.GetName()
			nodes = append(nodes, c.node("Constant", name+"_Constant", nil, []string{name}, attrTensor("value", t)))
		}
	} else {
		gp.Initializer = append(gp.Initializer, c.consts...)
	}
	for _, np := range gp.Node {
		nodes = append(nodes, c.before[np]...)
		nodes = append(nodes, np)
		nodes = append(nodes, c.after[np]...)
	}
	gp.Node = nodes
	// Outputs a rule dropped (BatchNormalization's training outputs, a
	// Dropout mask) lose their value_info too.
	made := map[string]bool{}
	for _, np := range gp.Node {
		for _, o := range np.Output {
			made[o] = true
		}
	}
	kept := gp.ValueInfo[:0]
	for _, vi := range gp.ValueInfo {
		if made[vi.GetName()] {
			kept = append(kept, vi)
		}
	}
	gp.ValueInfo = kept
	if err := graph.SortTopologically(gp); err != nil {
		return fmt.Errorf("upgrade: rewritten graph: %w", err)
	}
	return nil
}

// removeAttr deletes attribute name from n and returns it (nil when
// absent).
func removeAttr(n *graph.Node, name string) *onnx.AttributeProto {
	var found *onnx.AttributeProto
	kept := n.Proto.Attribute[:0]
	for _, a := range n.Proto.Attribute {
		if a.GetName() == name {
			found = a
			continue
		}
		kept = append(kept, a)
	}
	n.Proto.Attribute = kept
	return found
}

// setInput sets input i of n, padding skipped optional inputs with "".
func setInput(n *graph.Node, i int, name string) {
	for len(n.Proto.Input) <= i {
		n.Proto.Input = append(n.Proto.Input, "")
	}
	n.Proto.Input[i] = name
}

// trimInputs drops trailing empty inputs.
func trimInputs(n *graph.Node) {
	in := n.Proto.Input
	for len(in) > 0 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	n.Proto.Input = in
}

func setString(n *graph.Node, name, v string) {
	removeAttr(n, name)
	n.Proto.Attribute = append(n.Proto.Attribute, attrString(name, v))
}

func attrString(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_INT.Enum(), I: &v}
}

func attrTensor(name string, t *onnx.TensorProto) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_TENSOR.Enum(), T: t}
}

// used reports whether anything reads tensor t.
func (c *conv) used_(t string) bool {
	if t == "" {
		return false
	}
	v := c.m.Graph.Value(t)
	return v != nil && (len(v.Consumers) > 0 || v.IsOutput)
}
