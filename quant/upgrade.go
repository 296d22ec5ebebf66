package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// reduceAxesOps take axes as an attribute before opset 18 and as an input
// from 18 on (ReduceSum switched at 13 already).
var reduceAxesOps = map[string]bool{
	"ReduceL1": true, "ReduceL2": true, "ReduceLogSum": true, "ReduceLogSumExp": true,
	"ReduceMax": true, "ReduceMean": true, "ReduceMin": true, "ReduceProd": true, "ReduceSumSquare": true,
}

// changedOps changed meaning between opsets 13 and 21 in ways a rewrite
// here does not cover; models using them are not upgraded.
var changedOps = map[string]bool{"GroupNormalization": true, "GridSample": true}

// upgradeOpset raises the default-domain opset of m to target (13 ≤
// version < target), moving Reduce* axes attributes into inputs, the one
// change between 13 and 21 that matters for ordinary models. Models with
// subgraphs or with ops whose meaning changed are refused. The IR version
// is raised to 10, which INT4 tensors need.
func upgradeOpset(m *graph.Model, target int64) error {
	v := m.OpsetVersion("")
	if v >= target {
		return nil
	}
	if v < 13 {
		return fmt.Errorf("quant: %w: default opset %d (need 13 or more to upgrade to %d)", ErrUnsupported, v, target)
	}
	for _, n := range m.Graph.Nodes {
		if n.Domain() != "" {
			continue
		}
		if changedOps[n.Op()] || len(n.Implicit) > 0 {
			return fmt.Errorf("quant: %w: cannot raise opset %d to %d: node %s", ErrUnsupported, v, target, n)
		}
	}
	e := newEditor(m)
	for _, n := range m.Graph.Nodes {
		if n.Domain() != "" || !reduceAxesOps[n.Op()] || v >= 18 || target < 18 {
			continue
		}
		a := n.Attr("axes")
		if a == nil {
			continue
		}
		axes := e.init(graph.Int64Tensor(n.Name()+"_axes", []int64{int64(len(a.Ints))}, a.Ints))
		var kept = n.Proto.Attribute[:0]
		for _, at := range n.Proto.Attribute {
			if at.GetName() != "axes" {
				kept = append(kept, at)
			}
		}
		n.Proto.Attribute = kept
		n.Proto.Input = append(n.Proto.Input[:1], axes)
	}
	setOpset(m.Proto, "", target)
	if m.Proto.GetIrVersion() < 10 {
		ir := int64(10)
		m.Proto.IrVersion = &ir
	}
	return e.apply()
}
