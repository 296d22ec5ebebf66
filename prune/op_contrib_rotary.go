package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// com.microsoft RotaryEmbedding rotates each head of its input by position:
// [batch, seq, H·D] (heads packed; D from num_heads, else twice the
// cos cache's width) or [batch, H, seq, D]. The rotation pairs positions
// inside a head (d with d + D/2, or 2i with 2i+1), so a head is one unit:
// its D positions are coupled and pass to the output, whole heads prune,
// and num_heads (when given) is rewritten. Channels on head_dim of the
// per-head form freeze (the rotation mixes them).

func init() { registerMS(ruleFunc(analyzeContribRotary), "RotaryEmbedding") }

func analyzeContribRotary(a *Analysis, n *graph.Node) error {
	x, cos, y := n.Input(0), n.Input(2), n.Output(0)
	xs := a.shape(x)
	a.setShape(y, xs)
	if a.lab(x) == nil {
		return nil
	}
	switch len(xs) {
	case 4:
		for ax, l := range a.lab(x) {
			if ax == 3 {
				a.freeze(l, n.Name()+": rotary embedding mixes head_dim")
				continue
			}
			a.setLab(y, ax, l)
		}
		return nil
	case 3:
	default:
		a.freezeInputs(n, n.Name()+": RotaryEmbedding input of unknown rank")
		return nil
	}
	heads := n.IntAttr("num_heads", 0)
	var d int64
	switch cs := a.shape(cos); {
	case heads > 0 && xs[2] > 0 && xs[2]%heads == 0:
		d = xs[2] / heads
	case heads == 0 && len(cs) == 2 && cs[1] > 0 && xs[2] > 0 && xs[2]%(2*cs[1]) == 0:
		d = 2 * cs[1]
	default:
		a.freezeInputs(n, fmt.Sprintf("%s: RotaryEmbedding input %v does not split into heads (num_heads %d, cos cache %v)", n.Name(), xs, heads, cs))
		return nil
	}
	l := a.lastAxisLabels(x, 3, n.Name())
	if l == nil {
		return nil
	}
	units := a.newElems(int(xs[2]/d), n.Name())
	a.bindHeads(l, units, int(d), n.Name())
	a.setLab(y, 2, l)
	if heads > 0 {
		a.edits = append(a.edits, keptAttr{node: n, name: "num_heads", labels: units, per: 1})
	}
	return nil
}
