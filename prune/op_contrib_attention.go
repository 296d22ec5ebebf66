package prune

import "github.com/pare-dev/pare/graph"

// com.microsoft Attention takes the packed QKV weight [hidden, 3·H·D]
// (or qkv_hidden_sizes) and writes the context [batch, seq, H·D_v]. Its
// heads are not rewritten yet: every input and output channel freezes,
// naming the node. The output shape is still given so the projections
// and MLPs after it keep known shapes and stay prunable.

func init() { registerMS(ruleFunc(analyzeContribAttention), "Attention") }

func analyzeContribAttention(a *Analysis, n *graph.Node) error {
	xs, ws := a.shape(n.Input(0)), a.shape(n.Input(1))
	if len(xs) == 3 && len(ws) == 2 {
		v := ws[1] / 3
		if sizes := n.IntsAttr("qkv_hidden_sizes", nil); len(sizes) == 3 {
			v = sizes[2]
		}
		a.setShape(n.Output(0), []int64{xs[0], xs[1], v})
	}
	a.freezeNode(n, n.Name()+": heads of com.microsoft Attention are not rewritten")
	return nil
}
