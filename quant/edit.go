package quant

import (
	"fmt"
	"strconv"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// editor collects changes to a model's main graph and applies them in one
// pass: nodes replaced by sequences of nodes, nodes inserted before
// others, new initializers, and opset imports. Applying drops
// initializers no node reads any more, sorts the nodes and reindexes.
type editor struct {
	m       *graph.Model
	used    map[string]bool
	replace map[*onnx.NodeProto][]*onnx.NodeProto
	before  map[*onnx.NodeProto][]*onnx.NodeProto
	inits   []*onnx.TensorProto
	initSet map[string]*onnx.TensorProto
	imports map[string]int64
}

func newEditor(m *graph.Model) *editor {
	e := &editor{
		m:       m,
		used:    map[string]bool{},
		replace: map[*onnx.NodeProto][]*onnx.NodeProto{},
		before:  map[*onnx.NodeProto][]*onnx.NodeProto{},
		initSet: map[string]*onnx.TensorProto{},
		imports: map[string]int64{},
	}
	for _, v := range m.Graph.Values() {
		e.used[v.Name] = true
	}
	for _, n := range m.Graph.Nodes {
		e.used[n.Proto.GetName()] = true
	}
	return e
}

// name returns a fresh name derived from base.
func (e *editor) name(base string) string {
	if !e.used[base] {
		e.used[base] = true
		return base
	}
	for i := 1; ; i++ {
		if s := base + "_" + strconv.Itoa(i); !e.used[s] {
			e.used[s] = true
			return s
		}
	}
}

// init adds an initializer, naming it freshly from its current name, and
// returns the name it got.
func (e *editor) init(t *onnx.TensorProto) string {
	name := e.name(t.GetName())
	t.Name = &name
	e.inits = append(e.inits, t)
	e.initSet[name] = t
	return name
}

// sharedInit returns the initializer made for key before, or makes one
// with mk and remembers it. Weights read by several nodes are packed once.
func (e *editor) sharedInit(key string, mk func() (*onnx.TensorProto, error)) (string, error) {
	if t, ok := e.initSet["\x00"+key]; ok {
		return t.GetName(), nil
	}
	t, err := mk()
	if err != nil {
		return "", err
	}
	name := e.init(t)
	e.initSet["\x00"+key] = t
	return name, nil
}

// node makes a node with a fresh name and the given outputs (fresh names
// derived from the node name when outs is nil and n > 0).
func (e *editor) node(op, domain, base string, inputs []string, outputs []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	name := e.name(base)
	np := &onnx.NodeProto{Name: &name, OpType: &op, Input: inputs, Output: outputs, Attribute: attrs}
	if domain != "" {
		np.Domain = &domain
	}
	return np
}

// out returns a fresh value name.
func (e *editor) out(base string) string { return e.name(base) }

// replaceNode replaces n by nodes (which must produce n's outputs).
func (e *editor) replaceNode(n *graph.Node, nodes ...*onnx.NodeProto) {
	e.replace[n.Proto] = nodes
}

// insertBefore places nodes just before n.
func (e *editor) insertBefore(n *graph.Node, nodes ...*onnx.NodeProto) {
	e.before[n.Proto] = append(e.before[n.Proto], nodes...)
}

// require makes sure domain is imported at least at version.
func (e *editor) require(domain string, version int64) {
	e.imports[domain] = max(e.imports[domain], version)
}

// apply writes the changes into the model.
func (e *editor) apply() error {
	gp := e.m.Proto.Graph
	var nodes []*onnx.NodeProto
	for _, np := range gp.Node {
		nodes = append(nodes, e.before[np]...)
		if r, ok := e.replace[np]; ok {
			nodes = append(nodes, r...)
			continue
		}
		nodes = append(nodes, np)
	}
	gp.Node = nodes
	gp.Initializer = append(gp.Initializer, e.inits...)
	for domain, version := range e.imports {
		setOpset(e.m.Proto, domain, version)
	}
	dropUnusedInitializers(gp)
	if err := graph.SortTopologically(gp); err != nil {
		return fmt.Errorf("quant: rewritten graph: %w", err)
	}
	if err := e.m.Graph.Reindex(); err != nil {
		return fmt.Errorf("quant: rewritten graph: %w", err)
	}
	*e = *newEditor(e.m)
	return nil
}

// setOpset raises (or adds) the import of domain to version.
func setOpset(mp *onnx.ModelProto, domain string, version int64) {
	for _, o := range mp.OpsetImport {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			if o.GetVersion() < version {
				o.Version = &version
			}
			return
		}
	}
	mp.OpsetImport = append(mp.OpsetImport, &onnx.OperatorSetIdProto{Domain: &domain, Version: &version})
}

// dropUnusedInitializers removes initializers that are neither read by a
// node (of this graph or a subgraph) nor graph inputs or outputs.
func dropUnusedInitializers(gp *onnx.GraphProto) {
	read := map[string]bool{}
	var visit func(g *onnx.GraphProto)
	visit = func(g *onnx.GraphProto) {
		for _, n := range g.Node {
			for _, in := range n.Input {
				read[in] = true
			}
			for _, a := range n.Attribute {
				if a.G != nil {
					visit(a.G)
				}
				for _, sg := range a.Graphs {
					visit(sg)
				}
			}
		}
		for _, o := range g.Output {
			read[o.GetName()] = true
		}
	}
	visit(gp)
	for _, in := range gp.Input {
		read[in.GetName()] = true
	}
	kept := gp.Initializer[:0]
	for _, t := range gp.Initializer {
		if read[t.GetName()] {
			kept = append(kept, t)
		}
	}
	gp.Initializer = kept
}

// Attribute constructors for emitted nodes.
func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_INT.Enum(), I: &v}
}

func attrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_INTS.Enum(), Ints: v}
}

func attrFloat(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_FLOAT.Enum(), F: &v}
}
