package prune

import (
	"github.com/pare-dev/pare/graph"
)

// Reductions. Labels on axes that are not reduced pass through (shifted
// when keepdims is 0). Reducing over a labeled axis freezes it, except
// for the two ReduceMeans of a decomposed layer norm, recognised by their
// shape:
//
//	m = ReduceMean(x)       consumers: Sub(x, m) only
//	v = ReduceMean(Pow(Sub(x, m), 2))
//
// which mark the group inexact instead (statistics over fewer channels).

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
				if isLayerNormReduce(a, n) {
					a.markInexact(l, n.Name()+": layer norm over the channel axis")
				} else if isRMSNormReduce(a, n) {
					a.markInexact(l, n.Name()+": RMS norm over the channel axis")
				} else {
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

func isLayerNormReduce(a *Analysis, n *graph.Node) bool {
	if n.Op() != "ReduceMean" || n.IntAttr("keepdims", 1) != 1 {
		return false
	}
	if isMeanCentering(a, n) {
		return true
	}
	p := a.g.Producer(n.Input(0))
	if p == nil || p.Op() != "Pow" {
		return false
	}
	e, ok := a.g.Constant(p.Input(1))
	if !ok {
		return false
	}
	ev, err := graph.Float32s(e)
	if err != nil || len(ev) != 1 || ev[0] != 2 {
		return false
	}
	sub := a.g.Producer(p.Input(0))
	if sub == nil || sub.Op() != "Sub" {
		return false
	}
	m := a.g.Producer(sub.Input(1))
	return m != nil && m.Op() == "ReduceMean" && m.Input(0) == sub.Input(0) && isMeanCentering(a, m)
}

// isMeanCentering: every consumer of n's output is Sub(x, n(x)).
func isMeanCentering(a *Analysis, n *graph.Node) bool {
	cs := a.g.Consumers(n.Output(0))
	if len(cs) == 0 {
		return false
	}
	for _, c := range cs {
		if c.Op() != "Sub" || c.Input(0) != n.Input(0) || c.Input(1) != n.Output(0) {
			return false
		}
	}
	return true
}

// isRMSNormReduce recognises the mean of squares of an RMSNorm,
//
//	ms = ReduceMean(Pow(x, 2))     (or ReduceMean(Mul(x, x)))
//	y  = Div(x, Sqrt(Add(ms, eps)))  (or Mul(x, Reciprocal(Sqrt(...))))
//
// where ms reaches only a Div or Mul by x itself through Add, Sqrt and
// Reciprocal.
func isRMSNormReduce(a *Analysis, n *graph.Node) bool {
	if n.Op() != "ReduceMean" || n.IntAttr("keepdims", 1) != 1 {
		return false
	}
	p := a.g.Producer(n.Input(0))
	if p == nil {
		return false
	}
	var x string
	switch p.Op() {
	case "Pow":
		e, ok := a.g.Constant(p.Input(1))
		if !ok {
			return false
		}
		ev, err := graph.Float32s(e)
		if err != nil || len(ev) != 1 || ev[0] != 2 {
			return false
		}
		x = p.Input(0)
	case "Mul":
		if p.Input(0) != p.Input(1) {
			return false
		}
		x = p.Input(0)
	default:
		return false
	}
	cur := n.Output(0)
	for range 4 {
		cs := a.g.Consumers(cur)
		if len(cs) != 1 {
			return false
		}
		c := cs[0]
		switch c.Op() {
		case "Add":
			other := c.Input(0)
			if other == cur {
				other = c.Input(1)
			}
			if _, ok := a.g.Constant(other); !ok {
				return false
			}
		case "Sqrt", "Reciprocal":
		case "Div":
			return c.Input(0) == x && c.Input(1) == cur
		case "Mul":
			return (c.Input(0) == x && c.Input(1) == cur) || (c.Input(1) == x && c.Input(0) == cur)
		default:
			return false
		}
		cur = c.Output(0)
	}
	return false
}
