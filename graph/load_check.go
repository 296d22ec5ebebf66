package graph

import (
	"fmt"
	"strings"

	"github.com/pare-dev/pare/onnx"
)

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

// checkTensors verifies every tensor stored in the model (initializers,
// sparse parts, attribute tensors, in every graph) against its dims and
// element type, without decoding it: hostile dims cannot make it
// allocate.
func checkTensors(mp *onnx.ModelProto) error {
	var bad error
	forEachTensor(mp, func(t *onnx.TensorProto) {
		if bad == nil {
			bad = checkTensorData(t)
		}
	})
	return bad
}

// checkTensorData verifies that t holds exactly the data its dims and
// element type require, in one field that suits the type. Tensors whose
// data is external are checked on their metadata only.
func checkTensorData(t *onnx.TensorProto) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tensor %q: %w: %s", t.GetName(), ErrInvalidModel, fmt.Sprintf(format, args...))
	}
	dt := DataTypeOf(t)
	if _, known := onnx.TensorProto_DataType_name[int32(dt)]; !known || dt == onnx.TensorProto_UNDEFINED {
		return fail("unknown element type %d", int32(dt))
	}
	n, err := NumElements(t.Dims)
	if err != nil {
		return fail("%v", err)
	}
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"raw_data", t.RawData != nil}, {"float_data", len(t.FloatData) > 0},
		{"int32_data", len(t.Int32Data) > 0}, {"int64_data", len(t.Int64Data) > 0},
		{"double_data", len(t.DoubleData) > 0}, {"uint64_data", len(t.Uint64Data) > 0},
		{"string_data", len(t.StringData) > 0}, {"external_data", len(t.ExternalData) > 0},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	if len(set) > 1 {
		return fail("several data fields set (%s)", strings.Join(set, ", "))
	}
	if IsExternal(t) || len(t.ExternalData) > 0 {
		if !IsExternal(t) {
			return fail("external_data without data_location EXTERNAL")
		}
		return checkExternalMeta(t, n)
	}
	if dt == onnx.TensorProto_STRING {
		if len(set) == 1 && set[0] != "string_data" {
			return fail("STRING tensor stored in %s", set[0])
		}
		if int64(len(t.StringData)) != n {
			return fail("%d strings, dims %v need %d", len(t.StringData), t.Dims, n)
		}
		return nil
	}
	size, err := ByteSize(dt, n)
	if err != nil {
		return fail("%v", err)
	}
	if t.RawData != nil {
		if int64(len(t.RawData)) != size {
			return fail("raw_data has %d bytes, dims %v of %v need %d", len(t.RawData), t.Dims, dt, size)
		}
		return nil
	}
	field, want := typedField(dt, n, size)
	if len(set) == 0 {
		if n == 0 {
			return nil
		}
		return fail("no data for dims %v", t.Dims)
	}
	if set[0] != field {
		return fail("%v tensor stored in %s (expected raw_data or %s)", dt, set[0], field)
	}
	have := map[string]int{
		"float_data": len(t.FloatData), "int32_data": len(t.Int32Data), "int64_data": len(t.Int64Data),
		"double_data": len(t.DoubleData), "uint64_data": len(t.Uint64Data),
	}[field]
	if int64(have) != want {
		return fail("%s has %d values, dims %v of %v need %d", field, have, t.Dims, dt, want)
	}
	return nil
}

// typedField names the repeated field that holds elements of dt when
// raw_data is not used, and how many values it must hold for n elements
// taking size bytes packed.
func typedField(dt DataType, n, size int64) (string, int64) {
	switch dt {
	case onnx.TensorProto_FLOAT:
		return "float_data", n
	case onnx.TensorProto_COMPLEX64:
		return "float_data", 2 * n
	case onnx.TensorProto_DOUBLE:
		return "double_data", n
	case onnx.TensorProto_COMPLEX128:
		return "double_data", 2 * n
	case onnx.TensorProto_INT64:
		return "int64_data", n
	case onnx.TensorProto_UINT32, onnx.TensorProto_UINT64:
		return "uint64_data", n
	}
	if Bits(dt) < 8 {
		return "int32_data", size // packed bytes, as RawBytes reads them
	}
	return "int32_data", n
}

// checkExternalMeta checks an external tensor's metadata against its dims
// before any file is opened.
func checkExternalMeta(t *onnx.TensorProto, n int64) error {
	ref, err := parseExternal(t)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	want, err := ByteSize(DataTypeOf(t), n)
	if err != nil {
		return fmt.Errorf("tensor %q: %w: %v", t.GetName(), ErrInvalidModel, err)
	}
	if ref.hasLength && ref.length != want {
		return fmt.Errorf("tensor %q: %w: external data length %d, dims %v of %v need %d bytes",
			t.GetName(), ErrInvalidModel, ref.length, t.Dims, DataTypeOf(t), want)
	}
	return nil
}

// checkOutputsDefined fails when a graph output is neither a graph input,
// an initializer nor a node output.
func checkOutputsDefined(g *Graph) error {
	for _, v := range g.Outputs {
		if v.Producer == nil && v.Initializer == nil && v.Sparse == nil && !v.IsInput {
			return fmt.Errorf("%w: graph output %q is never produced", ErrInvalidModel, v.Name)
		}
	}
	return nil
}
