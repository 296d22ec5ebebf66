package prune

import (
	"github.com/pare-dev/pare/graph"
)

// Reductions. Labels on axes that are not reduced pass through (shifted
// when keepdims is 0). Reducing over a labeled axis freezes it, except
// for the ReduceMeans of a decomposed LayerNorm or RMSNorm
// (graph.NormReduce), which mark the group inexact instead (statistics
// over fewer channels).

var reduceOps = []string{
	"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
	"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
}

func init() { register(ruleFunc(analyzeReduce), reduceOps...) }

func analyzeReduce(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	r := len(xs)
	var axes []int64
	switch {
	case n.Op() == "ArgMax" || n.Op() == "ArgMin":
		axes = []int64{n.IntAttr("axis", 0)}
	case (n.Op() == "ReduceSum" && a.Model.OpsetVersion("") >= 13) || a.Model.OpsetVersion("") >= 18:
		if n.Input(1) != "" {
			t, ok := a.g.Constant(n.Input(1))
			if !ok {
				a.freezeInputs(n, n.Name()+": reduction axes are not constant")
				return nil
			}
			axes, _ = graph.Int64s(t)
		}
	default:
		axes = n.IntsAttr("axes", nil)
	}
	red := map[int]bool{}
	for _, ax := range axes {
		red[normAxis(ax, r)] = true
	}
	if len(axes) == 0 {
		if n.IntAttr("noop_with_empty_axes", 0) == 1 {
			a.setShape(y, xs)
			a.copyLabels(x, y)
			return nil
		}
		for i := range r {
			red[i] = true
		}
	}
	keep := n.IntAttr("keepdims", 1) == 1
	var out []int64
	for i, d := range xs {
		l := a.lab(x)[i]
		if red[i] {
			if l != nil {
				switch graph.NormReduce(a.g, n) {
				case graph.LayerNormKind:
					a.markInexact(l, n.Name()+": layer norm over the channel axis")
				case graph.RMSNormKind:
					a.markInexact(l, n.Name()+": RMS norm over the channel axis")
				default:
					a.freeze(l, n.Name()+": reduction over the channel axis")
				}
			}
			if keep {
				out = append(out, 1)
			}
			continue
		}
		a.setLab(y, len(out), l)
		out = append(out, d)
	}
	a.setShape(y, out)
	return nil
}
