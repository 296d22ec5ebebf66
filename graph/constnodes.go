package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// ConstantsToInitializers turns the main graph's Constant nodes whose
// output keep accepts (and is not a graph output) into initializers of
// the same name, for passes that rewrite initializers in place. It
// returns how many it moved and reindexes.
func (m *Model) ConstantsToInitializers(keep func(v *Value) bool) (int, error) {
	gp := m.Graph.Proto
	moved := 0
	kept := gp.Node[:0]
	for _, np := range gp.Node {
		if np.GetOpType() != "Constant" || np.GetDomain() != "" || len(np.Output) != 1 {
			kept = append(kept, np)
			continue
		}
		v := m.Graph.Value(np.Output[0])
		if v == nil || v.IsOutput || !keep(v) {
			kept = append(kept, np)
			continue
		}
		t, err := ConstantNodeTensor(np)
		if err != nil {
			kept = append(kept, np)
			continue
		}
		name := np.Output[0]
		t.Name = &name
		gp.Initializer = append(gp.Initializer, t)
		moved++
	}
	gp.Node = kept
	if moved == 0 {
		return 0, nil
	}
	if err := m.Graph.Reindex(); err != nil {
		return 0, fmt.Errorf("graph: constants to initializers: %w", err)
	}
	return moved, nil
}

// InitializersToConstants turns every initializer of the main graph that
// is not also a graph input into a Constant node placed first, the form
// of models that keep no initializers. It reindexes.
func (m *Model) InitializersToConstants() error {
	gp := m.Graph.Proto
	inputs := map[string]bool{}
	for _, in := range gp.Input {
		inputs[in.GetName()] = true
	}
	names := map[string]bool{}
	for _, np := range gp.Node {
		names[np.GetName()] = true
	}
	var consts []*onnx.NodeProto
	kept := gp.Initializer[:0]
	for _, t := range gp.Initializer {
		if inputs[t.GetName()] {
			kept = append(kept, t)
			continue
		}
		name, op, attr := t.GetName(), "Constant", "value"
		node := name + "_Constant"
		for i := 1; names[node]; i++ {
			node = fmt.Sprintf("%s_Constant_%d", name, i)
		}
		names[node] = true
		consts = append(consts, &onnx.NodeProto{Name: &node, OpType: &op, Output: []string{name},
			Attribute: []*onnx.AttributeProto{{Name: &attr, Type: onnx.AttributeProto_TENSOR.Enum(), T: t}}})
	}
	if len(consts) == 0 {
		return nil
	}
	gp.Initializer = kept
	gp.Node = append(consts, gp.Node...)
	if err := m.Graph.Reindex(); err != nil {
		return fmt.Errorf("graph: initializers to constants: %w", err)
	}
	return nil
}

// BypassConstantIdentities makes the readers of Identity(constant) read
// the constant itself and drops those Identity nodes (the torch exporter
// writes them for weights it de-duplicated), so that passes looking for
// constant weights and biases find them. Identities that produce graph
// outputs stay. It returns how many it dropped and reindexes.
func (m *Model) BypassConstantIdentities() (int, error) {
	g := m.Graph
	alias := map[string]string{}
	for _, n := range g.Nodes {
		if n.Op() != "Identity" || n.Domain() != "" || len(n.Proto.Output) != 1 {
			continue
		}
		if _, ok := g.Constant(n.Input(0)); !ok {
			continue
		}
		if v := g.Value(n.Output(0)); v == nil || v.IsOutput {
			continue
		}
		alias[n.Output(0)] = n.Input(0)
	}
	if len(alias) == 0 {
		return 0, nil
	}
	gp := g.Proto
	kept := gp.Node[:0]
	for _, np := range gp.Node {
		if np.GetOpType() == "Identity" && np.GetDomain() == "" && len(np.Output) == 1 && alias[np.Output[0]] != "" {
			continue
		}
		for i, in := range np.Input {
			if a := alias[in]; a != "" {
				np.Input[i] = a
			}
		}
		kept = append(kept, np)
	}
	gp.Node = kept
	if err := g.Reindex(); err != nil {
		return 0, fmt.Errorf("graph: bypass constant identities: %w", err)
	}
	return len(alias), nil
}
