package graph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
)

// maxNesting bounds protobuf message nesting (subgraphs inside If/Loop/
// Scan bodies), so hostile files cannot exhaust the stack.
const maxNesting = 100

// Load reads the model at path, resolving external data under the
// model's folder, and indexes its main graph.
func Load(path string) (*Model, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("graph: %s: %w: not a regular file", path, ErrInvalidModel)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	mp, err := unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	external, err := resolveExternal(mp, dir)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", path, err)
	}
	m, err := newModel(mp)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", path, err)
	}
	m.Dir, m.External = dir, external
	return m, nil
}

// Parse decodes a model held in memory. Tensors with external data are an
// error: they have no folder to be resolved in.
func Parse(data []byte) (*Model, error) {
	mp, err := unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	var bad error
	forEachTensor(mp, func(t *onnx.TensorProto) {
		if IsExternal(t) && bad == nil {
			bad = fmt.Errorf("graph: tensor %q: %w: external data in an in-memory model", t.GetName(), ErrInvalidModel)
		}
	})
	if bad != nil {
		return nil, bad
	}
	m, err := newModel(mp)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return m, nil
}

// FromProto indexes a model built in memory.
func FromProto(mp *onnx.ModelProto) (*Model, error) {
	m, err := newModel(mp)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return m, nil
}

func unmarshal(data []byte) (*onnx.ModelProto, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrInvalidModel)
	}
	mp := &onnx.ModelProto{}
	opts := proto.UnmarshalOptions{RecursionLimit: maxNesting}
	if err := opts.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("%w: not an ONNX protobuf: %v", ErrInvalidModel, err)
	}
	return mp, nil
}

func newModel(mp *onnx.ModelProto) (*Model, error) {
	if err := checkHeader(mp); err != nil {
		return nil, err
	}
	if err := SortTopologically(mp.Graph); err != nil {
		return nil, err
	}
	g, err := NewGraph(mp.Graph)
	if err != nil {
		return nil, err
	}
	if undef := g.Undefined(); len(undef) > 0 {
		return nil, fmt.Errorf("%w: value %q is read but never defined", ErrInvalidModel, undef[0])
	}
	return &Model{Proto: mp, Graph: g}, nil
}

// checkHeader validates what every model must carry before its graph is
// looked at: an IR version, opset imports, a graph, and an import for
// every operator domain in use.
func checkHeader(mp *onnx.ModelProto) error {
	if mp.Graph == nil {
		return fmt.Errorf("%w: no graph (is this an ONNX model?)", ErrInvalidModel)
	}
	if mp.GetIrVersion() <= 0 {
		return fmt.Errorf("%w: missing ir_version", ErrInvalidModel)
	}
	if len(mp.OpsetImport) == 0 {
		return fmt.Errorf("%w: no opset_import", ErrInvalidModel)
	}
	imported := map[string]bool{}
	for _, o := range mp.OpsetImport {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if imported[d] {
			return fmt.Errorf("%w: opset domain %q imported twice", ErrInvalidModel, d)
		}
		imported[d] = true
	}
	local := map[string]bool{}
	for _, f := range mp.Functions {
		local[f.GetDomain()+"/"+f.GetName()] = true
	}
	var missing error
	forEachNode(mp.Graph, func(n *onnx.NodeProto) {
		d := n.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if !imported[d] && !local[n.GetDomain()+"/"+n.GetOpType()] && missing == nil {
			missing = fmt.Errorf("%w: node %q (%s) uses domain %q, which the model does not import",
				ErrInvalidModel, n.GetName(), n.GetOpType(), d)
		}
	})
	return missing
}

// forEachNode visits every node of gp and of its subgraphs.
func forEachNode(gp *onnx.GraphProto, visit func(*onnx.NodeProto)) {
	for _, n := range gp.Node {
		visit(n)
		for _, a := range n.Attribute {
			if a.G != nil {
				forEachNode(a.G, visit)
			}
			for _, sg := range a.Graphs {
				forEachNode(sg, visit)
			}
		}
	}
}

// forEachTensor visits every dense tensor stored in the model:
// initializers, sparse initializer parts, and tensor attributes, in the
// main graph, subgraphs, functions and training graphs.
func forEachTensor(mp *onnx.ModelProto, visit func(*onnx.TensorProto)) {
	var walkGraph func(*onnx.GraphProto)
	var walkAttrs func([]*onnx.AttributeProto)
	sparse := func(st *onnx.SparseTensorProto) {
		if st.Values != nil {
			visit(st.Values)
		}
		if st.Indices != nil {
			visit(st.Indices)
		}
	}
	walkAttrs = func(attrs []*onnx.AttributeProto) {
		for _, a := range attrs {
			if a.T != nil {
				visit(a.T)
			}
			for _, t := range a.Tensors {
				visit(t)
			}
			if a.SparseTensor != nil {
				sparse(a.SparseTensor)
			}
			for _, st := range a.SparseTensors {
				sparse(st)
			}
			if a.G != nil {
				walkGraph(a.G)
			}
			for _, sg := range a.Graphs {
				walkGraph(sg)
			}
		}
	}
	walkGraph = func(gp *onnx.GraphProto) {
		if gp == nil {
			return
		}
		for _, t := range gp.Initializer {
			visit(t)
		}
		for _, st := range gp.SparseInitializer {
			sparse(st)
		}
		for _, n := range gp.Node {
			walkAttrs(n.Attribute)
		}
	}
	walkGraph(mp.Graph)
	for _, f := range mp.Functions {
		for _, n := range f.Node {
			walkAttrs(n.Attribute)
		}
	}
	for _, ti := range mp.TrainingInfo {
		walkGraph(ti.Initialization)
		walkGraph(ti.Algorithm)
	}
}

// isNotExist reports whether err means a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
