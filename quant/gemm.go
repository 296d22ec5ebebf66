package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// GemmToMatMul rewrites each Gemm with a constant 2-D weight, transA = 0
// and (when present) a constant bias as
//
//	A ──MatMul(α·op(B))──▶ [Add(β·C)] ──▶ Y
//
// so that formats built on MatMul see it. op(B) is Bᵀ when transB = 1.
// It returns the number of Gemms rewritten.
func GemmToMatMul(m *graph.Model) (int, error) {
	e := newEditor(m)
	count := 0
	for _, n := range m.Graph.Nodes {
		if n.Op() != "Gemm" || n.Domain() != "" || n.IntAttr("transA", 0) != 0 {
			continue
		}
		bt, ok := m.Graph.Constant(n.Input(1))
		if !ok || len(bt.Dims) != 2 {
			continue
		}
		var ct *onnx.TensorProto
		if c := n.Input(2); c != "" {
			if ct, ok = m.Graph.Constant(c); !ok {
				continue
			}
		}
		b, err := graph.Float32s(bt)
		if err != nil {
			continue // not a float weight
		}
		alpha, beta := n.FloatAttr("alpha", 1), n.FloatAttr("beta", 1)
		w := Matrix{Rows: int(bt.Dims[0]), Cols: int(bt.Dims[1]), Data: b}
		if n.IntAttr("transB", 0) != 0 {
			w = w.T()
		}
		for i := range w.Data {
			w.Data[i] *= alpha
		}
		wt := graph.FloatTensor(n.Input(1)+"_kn", []int64{int64(w.Rows), int64(w.Cols)}, w.Data)
		wname := e.init(wt)
		y := n.Output(0)
		if ct == nil {
			e.replaceNode(n, e.node("MatMul", "", n.Name()+"_matmul", []string{n.Input(0), wname}, []string{y}))
			count++
			continue
		}
		c, err := graph.Float32s(ct)
		if err != nil {
			return count, fmt.Errorf("quant: gemm %s: bias: %w", n, err)
		}
		for i := range c {
			c[i] *= beta
		}
		cname := e.init(graph.FloatTensor(n.Input(2)+"_scaled", ct.Dims, c))
		mid := e.out(y + "_matmul")
		e.replaceNode(n,
			e.node("MatMul", "", n.Name()+"_matmul", []string{n.Input(0), wname}, []string{mid}),
			e.node("Add", "", n.Name()+"_bias", []string{mid, cname}, []string{y}))
		count++
	}
	if count == 0 {
		return 0, nil
	}
	return count, e.apply()
}
