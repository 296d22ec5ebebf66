package graph

// Layer normalisations written out in primitive ops, as opset-13 and
// older exports (and RMSNorm in every opset) write them:
//
//	LayerNorm: x → ReduceMean → Sub(x, ·) → Pow(·, 2) → ReduceMean → Add(ε) → Sqrt
//	             → Div(Sub, ·) → Mul(γ) → [Add(β)] → y
//	RMSNorm:   ms = ReduceMean(Pow(x, 2))      (or ReduceMean(Mul(x, x)))
//	           y  = Div(x, Sqrt(Add(ms, ε)))   (or Mul(x, r) with r the reciprocal
//	                                             Reciprocal(Sqrt(...)) or Div(1, Sqrt(...)),
//	                                             as Llama's x·rsqrt(mean(x²)+ε) exports)
//
// Pruning asks which role a ReduceMean plays (NormReduce: statistics over
// fewer channels are inexact, not wrong); the fused rotation asks for the
// whole LayerNorm (MatchLayerNorm) to turn it into an RMSNorm. Both read
// the same rules here.

// NormKind is the kind of normalisation a ReduceMean belongs to.
type NormKind int

const (
	NotNorm NormKind = iota
	LayerNormKind
	RMSNormKind
)

// NormReduce returns the kind of normalisation the ReduceMean n computes
// a statistic of: the mean or the variance of a LayerNorm, or the mean of
// squares of an RMSNorm; NotNorm otherwise.
func NormReduce(g *Graph, n *Node) NormKind {
	if n.Op() != "ReduceMean" || n.IntAttr("keepdims", 1) != 1 {
		return NotNorm
	}
	if IsMeanCentering(g, n) || layerNormMeanOfVariance(g, n) != nil {
		return LayerNormKind
	}
	if isRMSNormMeanSquare(g, n) {
		return RMSNormKind
	}
	return NotNorm
}

// IsMeanCentering reports whether every consumer of n's output (and there
// is one) is Sub(x, n(x)): n is the mean of a LayerNorm.
func IsMeanCentering(g *Graph, n *Node) bool {
	cs := g.Consumers(n.Output(0))
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

// layerNormMeanOfVariance returns the mean m when n is the variance
// ReduceMean(Pow(Sub(x, m), 2)) of a LayerNorm, nil otherwise.
func layerNormMeanOfVariance(g *Graph, n *Node) *Node {
	p := g.Producer(n.Input(0))
	if p == nil || p.Op() != "Pow" || !isScalar(g, p.Input(1), 2) {
		return nil
	}
	sub := g.Producer(p.Input(0))
	if sub == nil || sub.Op() != "Sub" {
		return nil
	}
	m := g.Producer(sub.Input(1))
	if m == nil || m.Op() != "ReduceMean" || m.Input(0) != sub.Input(0) || !IsMeanCentering(g, m) {
		return nil
	}
	return m
}

// isRMSNormMeanSquare reports whether n is ReduceMean(Pow(x, 2)) or
// ReduceMean(Mul(x, x)) whose output reaches only a Div or Mul by x
// itself through Add (of a constant), Sqrt and a reciprocal (Reciprocal,
// or Div(1, ·)).
func isRMSNormMeanSquare(g *Graph, n *Node) bool {
	p := g.Producer(n.Input(0))
	if p == nil {
		return false
	}
	var x string
	switch p.Op() {
	case "Pow":
		if !isScalar(g, p.Input(1), 2) {
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
		cs := g.Consumers(cur)
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
			if _, ok := g.Constant(other); !ok {
				return false
			}
		case "Sqrt", "Reciprocal":
		case "Div":
			if c.Input(1) == cur && isScalar(g, c.Input(0), 1) {
				break // Div(1, ·): a reciprocal
			}
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

// LayerNorm is a written-out LayerNorm found whole by MatchLayerNorm.
type LayerNorm struct {
	X, Y        string
	Gamma, Beta string // Beta may be ""
	Eps         float32
	// Mean and Variance are its two ReduceMeans.
	Mean, Variance *Node
	// Nodes are mean, Sub, Pow, variance, Add(ε), Sqrt, Div, Mul(γ) and
	// Add(β) when present; the last writes Y.
	Nodes []*Node
}

// MatchLayerNorm matches the written-out LayerNorm whose mean is n, every
// intermediate value read once and no graph output, or returns false.
// param reports whether a constant may be its γ or β (the caller checks
// their size); a trailing Add whose other operand is not a param is left
// out. Which axis the ReduceMeans reduce is for the caller to check.
func MatchLayerNorm(g *Graph, mean *Node, param func(name string) bool) (*LayerNorm, bool) {
	if mean.Op() != "ReduceMean" || mean.Domain() != "" || mean.IntAttr("keepdims", 1) == 0 {
		return nil, false
	}
	x := mean.Input(0)
	sub := g.only(mean.Output(0))
	if sub == nil || sub.Op() != "Sub" || sub.Input(0) != x || sub.Input(1) != mean.Output(0) {
		return nil, false
	}
	cs := g.Consumers(sub.Output(0))
	if len(cs) != 2 || g.isOutput(sub.Output(0)) {
		return nil, false
	}
	var pow, div *Node
	for _, c := range cs {
		switch {
		case c.Op() == "Pow" && c.Input(0) == sub.Output(0):
			pow = c
		case c.Op() == "Div" && c.Input(0) == sub.Output(0):
			div = c
		}
	}
	if pow == nil || div == nil || !isScalar(g, pow.Input(1), 2) {
		return nil, false
	}
	variance := g.only(pow.Output(0))
	if variance == nil || variance.Op() != "ReduceMean" || variance.Domain() != "" || variance.IntAttr("keepdims", 1) == 0 {
		return nil, false
	}
	addEps := g.only(variance.Output(0))
	if addEps == nil || addEps.Op() != "Add" {
		return nil, false
	}
	epsName, ok := OtherInput(addEps, variance.Output(0))
	if !ok {
		return nil, false
	}
	eps, ok := ScalarConst(g, epsName)
	if !ok {
		return nil, false
	}
	sqrt := g.only(addEps.Output(0))
	if sqrt == nil || sqrt.Op() != "Sqrt" || g.only(sqrt.Output(0)) != div || div.Input(1) != sqrt.Output(0) {
		return nil, false
	}
	mul := g.only(div.Output(0))
	if mul == nil || mul.Op() != "Mul" {
		return nil, false
	}
	gamma, ok := OtherInput(mul, div.Output(0))
	if !ok || !param(gamma) {
		return nil, false
	}
	ln := &LayerNorm{X: x, Y: mul.Output(0), Gamma: gamma, Eps: eps, Mean: mean, Variance: variance,
		Nodes: []*Node{mean, sub, pow, variance, addEps, sqrt, div, mul}}
	if add := g.only(mul.Output(0)); add != nil && add.Op() == "Add" {
		if beta, ok := OtherInput(add, mul.Output(0)); ok && param(beta) {
			ln.Beta, ln.Y = beta, add.Output(0)
			ln.Nodes = append(ln.Nodes, add)
		}
	}
	return ln, true
}

// only returns the single consumer of v, if it has exactly one and v is
// not a graph output.
func (g *Graph) only(v string) *Node {
	cs := g.Consumers(v)
	if len(cs) != 1 || g.isOutput(v) {
		return nil
	}
	return cs[0]
}

func (g *Graph) isOutput(v string) bool {
	val := g.Value(v)
	return val != nil && val.IsOutput
}

// ScalarConst returns the value of a one-element float constant.
func ScalarConst(g *Graph, name string) (float32, bool) {
	t, ok := g.Constant(name)
	if !ok {
		return 0, false
	}
	v, err := Float32s(t)
	if err != nil || len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

func isScalar(g *Graph, name string, want float32) bool {
	v, ok := ScalarConst(g, name)
	return ok && v == want
}

// OtherInput returns the input of a two-input node that is not v.
func OtherInput(n *Node, v string) (string, bool) {
	if len(n.Proto.Input) != 2 {
		return "", false
	}
	switch v {
	case n.Input(0):
		return n.Input(1), true
	case n.Input(1):
		return n.Input(0), true
	}
	return "", false
}
