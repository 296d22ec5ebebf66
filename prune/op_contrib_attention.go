package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// com.microsoft Attention projects the input with one packed weight
// [in, Q+K+V] (Q = K = H·D, V = H·Dv, or qkv_hidden_sizes) and bias
// [Q+K+V], splits H heads and writes the context [batch, seq, H·Dv]. A
// head is one index: its D columns in each of the Q and K parts and its
// Dv columns of the V part (weight and bias), and its Dv output channels,
// which the output projection reads. num_heads and qkv_hidden_sizes are
// rewritten; the default scale 1/√D is unchanged. The input's channels
// (the hidden width) are the weight's rows. A past state [2, batch, H,
// past, D] that is a graph input read by this node alone, and the
// present output, lose the removed heads with the weight (iface.go);
// another past, a computed attention_bias with a head axis, or
// --head-dim freeze the heads, naming the node.

func init() { registerMS(ruleFunc(analyzeContribAttention), "Attention") }

func analyzeContribAttention(a *Analysis, n *graph.Node) error {
	x, w, b, y := n.Input(0), n.Input(1), n.Input(2), n.Output(0)
	xs, ws := a.shape(x), a.shape(w)
	heads := n.IntAttr("num_heads", 0)
	sizes := n.IntsAttr("qkv_hidden_sizes", nil)
	if len(ws) == 2 && len(sizes) != 3 && ws[1] > 0 {
		sizes = []int64{ws[1] / 3, ws[1] / 3, ws[1] / 3}
	}
	if len(xs) == 3 && len(sizes) == 3 {
		a.setShape(y, []int64{xs[0], xs[1], sizes[2]})
	}
	switch {
	case len(xs) != 3 || len(ws) != 2 || !a.isParam(w) || len(sizes) != 3 || heads <= 0:
		a.freezeNode(n, n.Name()+": Attention with unknown input shapes or a computed weight")
		return nil
	case sizes[0] != sizes[1] || sizes[0]%heads != 0 || sizes[2]%heads != 0 || sizes[0]+sizes[1]+sizes[2] != ws[1]:
		a.freezeNode(n, fmt.Sprintf("%s: qkv_hidden_sizes %v do not split weight %v into %d heads", n.Name(), sizes, ws, heads))
		return nil
	}
	a.addMAC(n, w, macRows(a.countShape(y)))
	a.addParam(w, 0, a.lastAxisLabels(x, 3, n.Name()), KindWeightIn, n)
	dqk, dv := int(sizes[0]/heads), int(sizes[2]/heads)
	units := a.newElems(int(heads), n.Name())
	cols := append(append(spread(units, dqk), spread(units, dqk)...), spread(units, dv)...)
	why := a.headsBlocked(n, nil, nil)
	if why == "" {
		why = a.attentionCache(n, []int{4}, []int{1}, 2, units)
	}
	if why != "" {
		a.freeze(units, why)
	}
	a.headBias(n, 5, units, n.Name())
	if !a.addParam(w, 1, cols, KindWeightOut, n) || (b != "" && !a.addParam(b, 0, cols, KindBias, n)) {
		return nil
	}
	a.mark(units, "head")
	a.setLab(y, 2, spread(units, dv))
	a.edits = append(a.edits, keptAttr{node: n, name: "num_heads", labels: units, per: 1})
	if n.IntsAttr("qkv_hidden_sizes", nil) != nil {
		a.edits = append(a.edits, keptInts{node: n, name: "qkv_hidden_sizes",
			labels: [][]int32{units, units, units}, per: []int64{int64(dqk), int64(dqk), int64(dv)}})
	}
	return nil
}
