package quant

import (
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// normInfo is a LayerNorm over the last axis, as a LayerNormalization
// node or written out as opset-13 exports do:
//
//	x → ReduceMean → Sub(x, ·) → Pow(·, 2) → ReduceMean → Add(ε) → Sqrt
//	  → Div(Sub, ·) → Mul(γ) → [Add(β)] → y
type normInfo struct {
	x, y        string
	gamma, beta string // constant names; beta may be ""
	eps         float32
	d           int
	nodes       []*graph.Node // the last writes y
}

func (n *normInfo) last() *graph.Node { return n.nodes[len(n.nodes)-1] }

// findNorms collects the LayerNorms of the graph that rotation can turn
// into RMSNorms.
func (f *fuser) findNorms() {
	f.norms, f.memberOf = map[*graph.Node]*normInfo{}, map[*graph.Node]*normInfo{}
	for _, n := range f.m.Graph.Nodes {
		var info *normInfo
		switch {
		case n.Op() == "LayerNormalization" && n.Domain() == "":
			d, _, ok := f.lastDim(n.Input(0))
			if !ok || !f.rmsReady(n, d) {
				continue
			}
			info = &normInfo{x: n.Input(0), y: n.Output(0), gamma: n.Input(1), eps: n.FloatAttr("epsilon", 1e-5), d: d, nodes: []*graph.Node{n}}
			if len(n.Proto.Input) > 2 {
				info.beta = n.Input(2)
			}
		case n.Op() == "ReduceMean" && n.Domain() == "":
			info = f.matchWrittenOutNorm(n)
		}
		if info == nil {
			continue
		}
		f.norms[info.last()] = info
		for _, m := range info.nodes {
			f.memberOf[m] = info
		}
	}
}

// lastAxisMean reports whether n is a ReduceMean over the last axis of a
// rank-r input, keeping dims.
func (f *fuser) lastAxisMean(n *graph.Node) bool {
	if n == nil || n.Op() != "ReduceMean" || n.Domain() != "" || n.IntAttr("keepdims", 1) == 0 {
		return false
	}
	_, rank, ok := f.lastDim(n.Input(0))
	if !ok {
		return false
	}
	axes := n.IntsAttr("axes", nil)
	if len(n.Proto.Input) > 1 && n.Input(1) != "" {
		t, ok := f.m.Graph.Constant(n.Input(1))
		if !ok {
			return false
		}
		v, err := graph.Int64s(t)
		if err != nil {
			return false
		}
		axes = v
	}
	return len(axes) == 1 && (axes[0] == -1 || axes[0] == int64(rank-1))
}

// matchWrittenOutNorm matches the written-out LayerNorm starting at the
// ReduceMean mean (see normInfo), over the last axis, or returns nil.
func (f *fuser) matchWrittenOutNorm(mean *graph.Node) *normInfo {
	if !f.lastAxisMean(mean) {
		return nil
	}
	d, _, ok := f.lastDim(mean.Input(0))
	if !ok || d < 2 {
		return nil
	}
	ln, ok := graph.MatchLayerNorm(f.m.Graph, mean, func(c string) bool { return f.isVector(c, d) })
	if !ok || !f.lastAxisMean(ln.Variance) {
		return nil
	}
	return &normInfo{x: ln.X, y: ln.Y, gamma: ln.Gamma, beta: ln.Beta, eps: ln.Eps, d: d, nodes: ln.Nodes}
}

// normalizedBy returns the LayerNorm whose output v is, possibly through
// ops that pass the rotation through, or nil.
func (f *fuser) normalizedBy(v string, cs *channels) *graph.Node {
	for range 64 {
		p := f.m.Graph.Producer(v)
		switch {
		case p == nil:
			return nil
		case f.norms[p] != nil && f.norms[p].y == v && f.norms[p].d == cs.d:
			return p
		case p.Op() != "Concat" && f.moves(p, 0, cs):
			v = p.Input(0)
		default:
			return nil
		}
	}
	return nil
}

// rmsReady reports whether a LayerNormalization normalises the last axis
// of size d, has constant scale (and bias) and only its first output used.
func (f *fuser) rmsReady(n *graph.Node, d int) bool {
	if n.Domain() != "" {
		return false
	}
	_, rank, ok := f.lastDim(n.Input(0))
	if !ok {
		return false
	}
	if a := n.IntAttr("axis", -1); a != -1 && a != int64(rank-1) {
		return false
	}
	for i := 1; i < len(n.Proto.Input); i++ {
		if n.Input(i) == "" {
			continue
		}
		if !f.isVector(n.Input(i), d) {
			return false
		}
	}
	for i := 1; i < len(n.Proto.Output); i++ {
		if n.Output(i) != "" && len(f.m.Graph.Consumers(n.Output(i))) > 0 || f.outs[n.Output(i)] {
			return false
		}
	}
	return true
}

// replaceWithRMS replaces a LayerNorm (scale and bias already folded
// into its readers) by y = x/√(mean(x²)+ε)·1.
func replaceWithRMS(m *graph.Model, e *editor, info *normInfo, d int) error {
	x, y, eps := info.x, info.y, info.eps
	ln := info.last()
	for _, n := range info.nodes[:len(info.nodes)-1] {
		e.replaceNode(n) // dropped: the RMSNorm replaces the whole pattern
	}
	base := ln.Name() + "_rms"
	two := e.init(graph.FloatTensor(rotationPrefix+"_two", nil, []float32{2}))
	epsName := e.init(graph.FloatTensor(rotationPrefix+"_eps_"+sanitize(ln.Name()), nil, []float32{eps}))
	ones := make([]float32, d)
	for i := range ones {
		ones[i] = 1
	}
	onesName := e.init(graph.FloatTensor(rotationPrefix+"_ones_"+sanitize(ln.Name()), []int64{int64(d)}, ones))
	sq, ms, v, r, q := e.out(base+"_sq"), e.out(base+"_mean"), e.out(base+"_var"), e.out(base+"_rms"), e.out(base+"_normed")
	var mean *onnx.NodeProto
	if m.OpsetVersion("") >= 18 {
		axes := e.init(graph.Int64Tensor(rotationPrefix+"_axes", []int64{1}, []int64{-1}))
		mean = e.node("ReduceMean", "", base+"_ReduceMean", []string{sq, axes}, []string{ms}, attrInt("keepdims", 1))
	} else {
		mean = e.node("ReduceMean", "", base+"_ReduceMean", []string{sq}, []string{ms}, attrInts("axes", -1), attrInt("keepdims", 1))
	}
	e.replaceNode(ln,
		e.node("Pow", "", base+"_Pow", []string{x, two}, []string{sq}),
		mean,
		e.node("Add", "", base+"_Add", []string{ms, epsName}, []string{v}),
		e.node("Sqrt", "", base+"_Sqrt", []string{v}, []string{r}),
		e.node("Div", "", base+"_Div", []string{x, r}, []string{q}),
		e.node("Mul", "", base+"_Mul", []string{q, onesName}, []string{y}))
	return nil
}
