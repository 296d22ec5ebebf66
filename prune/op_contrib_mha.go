package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// com.microsoft MultiHeadAttention takes query [batch, seq, H·D], key
// [batch, kv_seq, H·D] and value [batch, kv_seq, H·Dv] from separate
// projections, an optional packed bias [H·D + H·D + H·Dv], and writes
// [batch, seq, H·Dv]. A head is one index across the Q, K and V
// projections, the bias parts and the output channels; num_heads is
// rewritten. The packed forms (query [batch, seq, H, 3, D], key
// [batch, kv_seq, H, 2, D]), key/value given per head ([batch, H, seq,
// D]), the qk output and a computed attention_bias with a head axis
// freeze the heads, naming the node. Past key/value caches [batch, H,
// past, D] that are graph inputs read by this node alone, and the
// present outputs, lose the removed heads with the projections
// (iface.go); other past states freeze the heads.

func init() { registerMS(ruleFunc(analyzeContribMHA), "MultiHeadAttention") }

func analyzeContribMHA(a *Analysis, n *graph.Node) error {
	q, k, v, b, y := n.Input(0), n.Input(1), n.Input(2), n.Input(3), n.Output(0)
	qs, ks, vs := a.shape(q), a.shape(k), a.shape(v)
	heads := n.IntAttr("num_heads", 0)
	if len(qs) == 3 && len(vs) == 3 {
		a.setShape(y, []int64{qs[0], qs[1], vs[2]})
	}
	why := ""
	switch {
	case heads <= 0:
		why = "num_heads missing"
	case len(qs) != 3 || len(ks) != 3 || len(vs) != 3:
		why = "packed or per-head query/key/value"
	case qs[2] <= 0 || vs[2] <= 0 || qs[2]%heads != 0 || vs[2]%heads != 0 || ks[2] != qs[2]:
		why = fmt.Sprintf("query %v, key %v, value %v do not split into %d heads", qs, ks, vs, heads)
	}
	if why != "" {
		a.freezeNode(n, n.Name()+": MultiHeadAttention with "+why)
		return nil
	}
	dqk, dv := int(qs[2]/heads), int(vs[2]/heads)
	units := a.newElems(int(heads), n.Name())
	why = a.headsBlocked(n, nil, []int{3})
	if why == "" {
		why = a.attentionCache(n, []int{6, 7}, []int{1, 2}, 1, units)
	}
	if why != "" {
		a.freeze(units, why)
	}
	a.bindHeads(a.lastAxisLabels(q, 3, n.Name()), units, dqk, n.Name()+": query")
	a.bindHeads(a.lastAxisLabels(k, 3, n.Name()), units, dqk, n.Name()+": key")
	a.bindHeads(a.lastAxisLabels(v, 3, n.Name()), units, dv, n.Name()+": value")
	a.headBias(n, 5, units, n.Name())
	if b != "" {
		cols := append(append(spread(units, dqk), spread(units, dqk)...), spread(units, dv)...)
		if !a.addParam(b, 0, cols, KindBias, n) {
			return nil
		}
	}
	a.mark(units, "head")
	a.setLab(y, 2, spread(units, dv))
	a.edits = append(a.edits, keptAttr{node: n, name: "num_heads", labels: units, per: 1})
	return nil
}
