package prune

import (
	"github.com/pare-dev/pare/graph"
)

// Gemm: Y = A'·B' + C with A' = transA ? Aᵀ : A, B' likewise. With a
// constant B, A's contracted axis follows B's contracted axis (axis 0, or
// 1 with transB), the output features are fresh elements on B's other
// axis and on C when C is a vector [N] or [1, N]; A's row axis passes
// through. MatMul with a constant rank-2 right operand works the same way
// on the last axis (other axes pass through); with a constant left
// operand, the right operand's axis -2 is contracted. MatMul between two
// activations (attention) is op_attention.go.

func init() {
	register(ruleFunc(analyzeGemm), "Gemm")
	register(ruleFunc(analyzeMatMul), "MatMul")
}

func analyzeGemm(a *Analysis, n *graph.Node) error {
	x, w, c, y := n.Input(0), n.Input(1), n.Input(2), n.Output(0)
	transA, transB := n.IntAttr("transA", 0) == 1, n.IntAttr("transB", 0) == 1
	xs, ws := a.shape(x), a.shape(w)
	kAxisA, rowAxis := 1, 0
	if transA {
		kAxisA, rowAxis = 0, 1
	}
	kAxisB, nAxisB := 0, 1
	if transB {
		kAxisB, nAxisB = 1, 0
	}
	if len(ws) == 2 && len(xs) == 2 {
		a.setShape(y, []int64{xs[rowAxis], ws[nAxisB]})
	}
	if len(ws) != 2 || !a.isParam(w) {
		a.freezeInputs(n, n.Name()+": Gemm without a constant B")
		return nil
	}
	a.addMAC(n, w, rowsPerSample(dimOf(a.countShape(x), rowAxis)))
	a.addParam(w, kAxisB, a.lab(x)[kAxisA], KindWeightIn, n)
	a.setLab(y, 0, a.lab(x)[rowAxis])
	out := a.newElems(int(ws[nAxisB]), n.Name())
	if !a.addParam(w, nAxisB, out, KindWeightOut, n) {
		return nil
	}
	if c != "" {
		cs := a.shape(c)
		switch {
		case prod(cs) == 1:
		case len(cs) == 1 && cs[0] == ws[nAxisB]:
			a.addParam(c, 0, out, KindBias, n)
		case len(cs) == 2 && cs[0] == 1 && cs[1] == ws[nAxisB]:
			a.addParam(c, 1, out, KindBias, n)
		default:
			a.freeze(out, n.Name()+": Gemm bias shape cannot be sliced")
		}
	}
	a.setLab(y, 1, out)
	return nil
}

// rowsPerSample counts rows that are not the batch: one when unknown.
func rowsPerSample(d int64) int64 {
	if d < 0 {
		return 1
	}
	return d
}

func analyzeMatMul(a *Analysis, n *graph.Node) error {
	x, w, y := n.Input(0), n.Input(1), n.Output(0)
	xs, ws := a.shape(x), a.shape(w)
	if out := matMulShape(xs, ws); out != nil {
		a.setShape(y, out)
	}
	switch {
	case len(ws) == 2 && len(xs) >= 2 && a.isParam(w):
		r := len(xs)
		a.addMAC(n, w, macRows(a.countShape(y)))
		a.addParam(w, 0, a.lab(x)[r-1], KindWeightIn, n)
		for ax, l := range a.lab(x) {
			if ax != r-1 {
				a.setLab(y, ax, l)
			}
		}
		out := a.newElems(int(ws[1]), n.Name())
		a.addParam(w, 1, out, KindWeightOut, n)
		a.setLab(y, r-1, out)
	case len(xs) == 2 && len(ws) >= 2 && a.isParam(x):
		r := len(ws)
		a.addMAC(n, x, macCols(a.countShape(y)))
		a.addParam(x, 1, a.lab(w)[r-2], KindWeightIn, n)
		for ax, l := range a.lab(w) {
			if ax != r-2 {
				a.setLab(y, ax, l)
			}
		}
		out := a.newElems(int(xs[0]), n.Name())
		a.addParam(x, 0, out, KindWeightOut, n)
		a.setLab(y, r-2, out)
	case !a.isParam(x) && !a.isParam(w):
		return analyzeActMatMul(a, n)
	default:
		a.freezeInputs(n, n.Name()+": MatMul with a constant operand of rank other than 2")
	}
	return nil
}

// matMulShape is numpy matmul's output shape for operands of rank ≥ 2.
func matMulShape(xs, ws []int64) []int64 {
	if len(xs) < 2 || len(ws) < 2 {
		return nil
	}
	r := max(len(xs), len(ws))
	out := make([]int64, r)
	for i := 0; i < r-2; i++ {
		dx, dw := int64(1), int64(1)
		if j := i - (r - len(xs)); j >= 0 {
			dx = xs[j]
		}
		if j := i - (r - len(ws)); j >= 0 {
			dw = ws[j]
		}
		out[i] = max(dx, dw)
		if dx < 0 || dw < 0 {
			out[i] = -1
		}
	}
	out[r-2], out[r-1] = xs[len(xs)-2], ws[len(ws)-1]
	return out
}

// macRows is the number of weight applications per sample for x·W: every
// output dim but the last, unknown dims counted as one (the batch).
func macRows(ys []int64) int64 {
	if len(ys) < 2 {
		return -1
	}
	return knownProd(ys[:len(ys)-1])
}

// macCols is the same for W·x: every output dim but axis -2.
func macCols(ys []int64) int64 {
	if len(ys) < 2 {
		return -1
	}
	return knownProd(ys[:len(ys)-2]) * max(ys[len(ys)-1], 1)
}

func knownProd(s []int64) int64 {
	p := int64(1)
	for _, d := range s {
		if d > 0 {
			p *= d
		}
	}
	return p
}
