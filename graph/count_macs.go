package graph

import (
	"strings"
)

// symbolAsOne is the value symbolic dims take when counting MACs: a
// batch of one, a sequence of one.
const symbolAsOne = 1

// nodeMACs returns a node's multiply-accumulates; ok is false when a
// shape it needs is unknown. Ops that are not products count 0.
func nodeMACs(n *Node, s *Shapes) (int64, bool) {
	shape := func(name string) TensorShape { t, _ := s.Of(name); return t }
	elems := func(name string) (int64, bool) { return shape(name).Elements(symbolAsOne) }
	dims := func(name string) ([]int64, bool) {
		t := shape(name)
		if !t.Ranked {
			return nil, false
		}
		out := make([]int64, len(t.Dims))
		for i, d := range t.Dims {
			v, ok := d.Eval(symbolAsOne)
			if !ok {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	}
	prod := func(ds []int64) int64 {
		p := int64(1)
		for _, d := range ds {
			p = satMul(p, d)
		}
		return p
	}
	// withK multiplies the output's elements by the contracted size.
	withK := func(out string, k int64, okK bool) (int64, bool) {
		e, ok := elems(out)
		if !ok || !okK {
			return 0, false
		}
		return satMul(e, k), true
	}
	lastDim := func(name string, fromEnd int) (int64, bool) {
		d, ok := dims(name)
		if !ok || len(d) < fromEnd {
			return 0, false
		}
		return d[len(d)-fromEnd], true
	}
	op := n.Op()
	if n.Domain() == msDomain {
		if op == "MatMulNBits" {
			return withK(n.Output(0), n.IntAttr("K", 0), true)
		}
		return 0, true
	}
	if n.Domain() != "" {
		return 0, true
	}
	switch op {
	case "Conv", "ConvInteger", "QLinearConv":
		w := n.Input(1)
		if op == "QLinearConv" {
			w = n.Input(3)
		}
		wd, ok := dims(w)
		if !ok || len(wd) < 2 {
			return 0, false
		}
		return withK(n.Output(0), prod(wd[1:]), true)
	case "ConvTranspose":
		wd, ok := dims(n.Input(1))
		if !ok || len(wd) < 2 {
			return 0, false
		}
		e, ok := elems(n.Input(0))
		if !ok {
			return 0, false
		}
		return satMul(e, prod(wd[1:])), true
	case "Gemm":
		ad, ok := dims(n.Input(0))
		if !ok || len(ad) != 2 {
			return 0, false
		}
		return withK(n.Output(0), ad[1-n.IntAttr("transA", 0)&1], true)
	case "MatMul", "MatMulInteger":
		k, ok := lastDim(n.Input(0), 1)
		return withK(n.Output(0), k, ok)
	case "QLinearMatMul":
		k, ok := lastDim(n.Input(0), 1)
		return withK(n.Output(0), k, ok)
	case "Einsum":
		return einsumMACs(n, s)
	case "LSTM", "GRU", "RNN":
		return rnnMACs(n, dims)
	}
	return 0, true
}

// einsumMACs counts a two-operand contraction as the product of the
// sizes of every index it mentions (each output element sums over the
// contracted indices). Other forms count 0.
func einsumMACs(n *Node, s *Shapes) (int64, bool) {
	eq := strings.ReplaceAll(n.StringAttr("equation", ""), " ", "")
	lhs, _, _ := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != 2 || len(n.Proto.Input) != 2 || strings.Contains(lhs, "...") {
		return 0, true
	}
	sizes := map[rune]int64{}
	for i, term := range terms {
		t, _ := s.Of(n.Input(i))
		if !t.Ranked || len(t.Dims) != len([]rune(term)) {
			return 0, false
		}
		for j, r := range term {
			v, ok := t.Dims[j].Eval(symbolAsOne)
			if !ok {
				return 0, false
			}
			sizes[r] = max(sizes[r], v)
		}
	}
	macs := int64(1)
	for _, v := range sizes {
		macs = satMul(macs, v)
	}
	return macs, true
}

// rnnMACs counts, per time step, batch and direction, the gate products
// with the input and the hidden state: gates·hidden·(input + hidden).
func rnnMACs(n *Node, dims func(string) ([]int64, bool)) (int64, bool) {
	x, ok1 := dims(n.Input(0))
	w, ok2 := dims(n.Input(1))
	r, ok3 := dims(n.Input(2))
	if !ok1 || !ok2 || !ok3 || len(x) != 3 || len(w) != 3 || len(r) != 3 {
		return 0, false
	}
	steps := satMul(x[0], x[1]) // seq·batch in either layout
	perStep := satMul(w[1], w[2]+r[2])
	return satMul(satMul(steps, w[0]), perStep), true
}
