package prune

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Exporter-deduplicated constants. Exporters store one all-zero bias or
// one all-one LayerNorm gamma and let every layer read it, directly or
// through Identity aliases. Those readers are not tied: a zero bias of a
// query projection has nothing to do with the embedding LayerNorm's
// beta. Coupling them would tie unrelated channels (BERT's Q/K/V biases to
// the residual stream, one heads group spanning every ViT layer) or slice
// a tensor another stage still reads at full width (Swin).
//
// A constant whose elements are all equal and that more than one node
// input reads is therefore a parameter per reader: analysis gives each
// reader its own member, and Apply gives each reader whose slice changes
// a private, sliced copy (the same fill, fewer positions). The shared
// original is dropped when no reader is left. Constants with distinct
// values read by several nodes are real ties (the same trained weights):
// their readers stay coupled, and members list the other readers in
// SharedWith.

// use is one node input reading a constant, directly or through Identity.
type use struct {
	node  *graph.Node
	input int
}

// findShared records, for every constant read by more than one node
// input (Identity aliases followed), its readers; filled marks those whose
// elements are all equal.
func (a *Analysis) findShared() {
	a.uses = map[string][]use{}
	a.filled = map[string]bool{}
	for _, n := range a.g.Nodes {
		if n.Op() == "Identity" && n.Domain() == "" {
			if _, ok := a.g.Constant(a.throughIdentity(n.Input(0))); ok {
				continue // an alias, not a reader
			}
		}
		for i, in := range n.Proto.Input {
			if in == "" {
				continue
			}
			base := a.throughIdentity(in)
			if _, ok := a.g.Constant(base); ok {
				a.uses[base] = append(a.uses[base], use{n, i})
			}
		}
	}
	for name, us := range a.uses {
		if len(us) < 2 || a.aliasReachesOutput(name) {
			continue
		}
		if t, ok := a.g.Constant(name); ok && isFilled(t) {
			a.filled[name] = true
		}
	}
}

// throughIdentity follows Identity producers back to their source.
func (a *Analysis) throughIdentity(name string) string {
	for range 64 {
		p := a.g.Producer(name)
		if p == nil || p.Op() != "Identity" || p.Domain() != "" {
			return name
		}
		name = p.Input(0)
	}
	return name
}

// aliasReachesOutput reports whether the constant or an Identity alias
// of it is a graph output.
func (a *Analysis) aliasReachesOutput(name string) bool {
	seen := map[string]bool{}
	queue := []string{name}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		if v := a.g.Value(cur); v != nil && v.IsOutput {
			return true
		}
		for _, c := range a.g.Consumers(cur) {
			if c.Op() == "Identity" && c.Domain() == "" {
				queue = append(queue, c.Output(0))
			}
		}
	}
	return false
}

// isFilled: a float tensor of at least two elements, all equal.
func isFilled(t *onnx.TensorProto) bool {
	switch graph.DataTypeOf(t) {
	case onnx.TensorProto_FLOAT, onnx.TensorProto_DOUBLE, onnx.TensorProto_FLOAT16, onnx.TensorProto_BFLOAT16:
	default:
		return false
	}
	if graph.IsExternal(t) {
		return false
	}
	raw, err := graph.RawBytes(t)
	if err != nil {
		return false
	}
	n, err := graph.NumElements(t.Dims)
	if err != nil || n < 2 || int64(len(raw))%n != 0 {
		return false
	}
	w := int64(len(raw)) / n
	for i := w; i < int64(len(raw)); i += w {
		if !bytes.Equal(raw[i:i+w], raw[:w]) {
			return false
		}
	}
	return true
}

// readerInput returns the input of node that reads the constant base:
// want when that input reads it, else the first that does.
func (a *Analysis) readerInput(node *graph.Node, base string, want int) (int, bool) {
	first, found := 0, false
	for _, u := range a.uses[base] {
		if u.node.Proto != node.Proto {
			continue
		}
		if u.input == want {
			return u.input, true
		}
		if !found {
			first, found = u.input, true
		}
	}
	return first, found
}

// sharedWith lists the other nodes that read a tied constant.
func (a *Analysis) sharedWith(name, node string) []string {
	var out []string
	for _, u := range a.uses[name] {
		if n := u.node.Name(); n != node && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// copyKey names the private copy of a filled constant for one reader.
func copyKey(tensor string, node *graph.Node, input int) string {
	return fmt.Sprintf("%s@%s#%d", tensor, node.Name(), input)
}

// unshare gives the reader of a copied parameter its own sliced copy of
// the filled constant, and drops the original once nothing reads it.
func (ap *applier) unshare(p *param, mask []bool) error {
	src, ok := ap.a.g.Constant(p.key.tensor)
	if !ok {
		return fmt.Errorf("prune: %w: %q is not a constant", ErrUnsupported, p.key.tensor)
	}
	raw, err := graph.RawBytes(src)
	if err != nil {
		return err
	}
	name := ap.uniqueName(p.key.tensor + "_" + sanitize(p.node))
	t := graph.NewTensor(name, graph.DataTypeOf(src), slices.Clone(src.Dims), slices.Clone(raw))
	if err := sliceTensor(t, p.key.axis, mask); err != nil {
		return fmt.Errorf("prune: slice %q axis %d: %w", p.key.tensor, p.key.axis, err)
	}
	ap.a.g.Proto.Initializer = append(ap.a.g.Proto.Initializer, t)
	p.reader.Proto.Input[p.input] = name
	if ap.private == nil {
		ap.private = map[string]bool{}
	}
	ap.private[name] = true
	ap.unshared[p.key.tensor]++
	return nil
}

// dropUnread removes filled constants whose every reader got a copy,
// with the Identity aliases that only served them.
func (ap *applier) dropUnread() error {
	if len(ap.unshared) == 0 {
		return nil
	}
	if err := ap.a.g.Reindex(); err != nil {
		return err
	}
	for name, n := range ap.unshared {
		if n < len(ap.a.uses[name]) {
			continue
		}
		dead := map[*onnx.NodeProto]bool{}
		var walk func(v string) bool // true when v is read only by dead aliases
		walk = func(v string) bool {
			if val := ap.a.g.Value(v); val != nil && val.IsOutput {
				return false
			}
			for _, c := range ap.a.g.Consumers(v) {
				if c.Op() != "Identity" || c.Domain() != "" || !walk(c.Output(0)) {
					return false
				}
				dead[c.Proto] = true
			}
			return true
		}
		if !walk(name) {
			continue
		}
		gp := ap.a.g.Proto
		if p := ap.a.g.Producer(name); p != nil {
			dead[p.Proto] = true // a Constant node
		}
		gp.Node = slices.DeleteFunc(gp.Node, func(n *onnx.NodeProto) bool { return dead[n] })
		gp.Initializer = slices.DeleteFunc(gp.Initializer, func(t *onnx.TensorProto) bool { return t.GetName() == name })
		if err := ap.a.g.Reindex(); err != nil {
			return err
		}
	}
	return nil
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}
