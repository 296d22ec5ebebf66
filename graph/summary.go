package graph

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pare-dev/pare/onnx"
)

// Summary describes a model for people and programs (pare inspect). The
// JSON field names are stable; docs/CLI.md lists them.
type Summary struct {
	IRVersion       int64          `json:"ir_version"`
	Opsets          []OpsetSummary `json:"opsets"`
	ProducerName    string         `json:"producer_name"`
	ProducerVersion string         `json:"producer_version"`
	Inputs          []ValueSummary `json:"inputs"`
	Outputs         []ValueSummary `json:"outputs"`
	NodeCount       int            `json:"node_count"`
	// Ops is the op histogram, most frequent first.
	Ops          []OpCount `json:"ops"`
	Params       int64     `json:"params"`
	ParamTensors int       `json:"param_tensors"`
	MACs         int64     `json:"macs"`
	// MACsSymbolValue is the value symbolic dims take in MACs (1: batch 1).
	MACsSymbolValue int64 `json:"macs_symbolic_dims_as"`
	// MACsUncounted names nodes left out of MACs for lack of a shape.
	MACsUncounted []string `json:"macs_uncounted"`
	// MACsUnknown says why MACs is no real count (symbolic image or
	// feature sizes, uncounted nodes); empty when it is one.
	MACsUnknown string `json:"macs_unknown,omitempty"`
	// InputShapes are the sizes fixed with Model.SetInputShapes.
	InputShapes      map[string][]int64 `json:"input_shapes,omitempty"`
	Initializers     int                `json:"initializers"`
	InitializerBytes int64              `json:"initializer_bytes"`
	// ShapeConflicts lists declared shapes that contradict inference.
	ShapeConflicts []string      `json:"shape_conflicts"`
	Nodes          []NodeSummary `json:"-"`
}

// OpsetSummary is one opset import ("" is the default ONNX domain).
type OpsetSummary struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// ValueSummary is a graph input or output, or a node output. Shape holds
// an int64 per known dim, a string per symbolic dim and nil per unknown
// one; it is nil when the rank is unknown.
type ValueSummary struct {
	Name     string `json:"name"`
	ElemType string `json:"elem_type"`
	Shape    []any  `json:"shape"`
	// Display is the shape as text ("float[batch,3,32,32]").
	Display string `json:"-"`
}

// OpCount is one line of the op histogram.
type OpCount struct {
	Op     string `json:"op"`
	Domain string `json:"domain,omitempty"`
	Count  int    `json:"count"`
}

// NodeSummary is one node with its counts.
type NodeSummary struct {
	Index   int            `json:"index"`
	Name    string         `json:"name"`
	Op      string         `json:"op"`
	Domain  string         `json:"domain,omitempty"`
	Outputs []ValueSummary `json:"outputs"`
	Params  int64          `json:"params"`
	MACs    int64          `json:"macs"`
	Counted bool           `json:"macs_counted"`
}

// Summarize infers shapes, counts parameters and MACs, and gathers the
// model's header, interface and op histogram.
func Summarize(m *Model) (*Summary, error) {
	shapes, err := InferShapes(m)
	if err != nil {
		return nil, err
	}
	counts := CountWithShapes(m, shapes)
	mp, g := m.Proto, m.Graph
	s := &Summary{
		IRVersion:       mp.GetIrVersion(),
		ProducerName:    mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		NodeCount:       len(g.Nodes),
		Params:          counts.Params,
		ParamTensors:    counts.ParamTensors,
		MACs:            counts.MACs,
		MACsSymbolValue: symbolAsOne,
		MACsUncounted:   append([]string{}, counts.Uncounted...),
		InputShapes:     m.InputShapes,
		Initializers:    len(g.Proto.Initializer),
		ShapeConflicts:  []string{},
	}
	switch sym := m.SymbolicSizes(); {
	case len(sym) > 0:
		s.MACsUnknown = "symbolic input sizes " + strings.Join(sym, ", ") + " (fix them with --input-shape)"
	case len(counts.Uncounted) > 0:
		s.MACsUnknown = fmt.Sprintf("%d nodes have unknown shapes", len(counts.Uncounted))
	}
	for _, o := range mp.OpsetImport {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		s.Opsets = append(s.Opsets, OpsetSummary{Domain: d, Version: o.GetVersion()})
	}
	for _, v := range g.Inputs {
		s.Inputs = append(s.Inputs, valueSummary(v.Name, shapes))
	}
	for _, v := range g.Outputs {
		s.Outputs = append(s.Outputs, valueSummary(v.Name, shapes))
	}
	s.Ops = opHistogram(g)
	for _, t := range g.Proto.Initializer {
		if n, err := NumElements(t.Dims); err == nil {
			if b, err := ByteSize(DataTypeOf(t), n); err == nil {
				s.InitializerBytes += b
			}
		}
	}
	for _, c := range shapes.Conflicts {
		s.ShapeConflicts = append(s.ShapeConflicts, c.String())
	}
	for i, n := range g.Nodes {
		nc := counts.Nodes[i]
		ns := NodeSummary{Index: i, Name: nc.Name, Op: nc.Op, Domain: n.Domain(),
			Params: nc.Params, MACs: nc.MACs, Counted: nc.Counted}
		for _, o := range n.Proto.Output {
			if o != "" {
				ns.Outputs = append(ns.Outputs, valueSummary(o, shapes))
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	return s, nil
}

func valueSummary(name string, shapes *Shapes) ValueSummary {
	t, _ := shapes.Of(name)
	v := ValueSummary{Name: name, ElemType: ElemTypeName(t.Elem), Display: t.String()}
	if t.Ranked {
		v.Shape = make([]any, len(t.Dims))
		for i, d := range t.Dims {
			switch {
			case d.IsKnown():
				v.Shape[i], _ = d.Value()
			case d.IsSymbolic():
				v.Shape[i] = d.String()
			}
		}
	}
	return v
}

// ElemTypeName returns the lower-case ONNX name of an element type
// ("float", "int64"), or "" for UNDEFINED.
func ElemTypeName(dt DataType) string {
	if dt == onnx.TensorProto_UNDEFINED {
		return ""
	}
	return strings.ToLower(dt.String())
}

func opHistogram(g *Graph) []OpCount {
	type key struct{ op, domain string }
	counts := map[key]int{}
	for _, n := range g.Nodes {
		counts[key{n.Op(), n.Domain()}]++
	}
	out := make([]OpCount, 0, len(counts))
	for k, c := range counts {
		out = append(out, OpCount{Op: k.op, Domain: k.domain, Count: c})
	}
	slices.SortFunc(out, func(a, b OpCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Op, b.Op))
	})
	return out
}
