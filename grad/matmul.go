package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Gemm"] = gemm
	rules["MatMul"] = matmul
}

// gemm is alpha·A'·B' + beta·C with A' and B' optionally transposed.
func gemm(t *translator, n *graph.Node) error {
	a, err := t.in(n, 0)
	if err != nil {
		return err
	}
	b, err := t.in(n, 1)
	if err != nil {
		return err
	}
	if n.IntAttr("transA", 0) != 0 {
		if a, err = G.Transpose(a, 1, 0); err != nil {
			return err
		}
	}
	if n.IntAttr("transB", 0) != 0 {
		if b, err = G.Transpose(b, 1, 0); err != nil {
			return err
		}
	}
	y, err := G.Mul(a, b)
	if err != nil {
		return err
	}
	if alpha := n.FloatAttr("alpha", 1); alpha != 1 {
		if y, err = G.Mul(y, G.NewConstant(float64(alpha))); err != nil {
			return err
		}
	}
	if n.Input(2) != "" {
		c, err := t.in(n, 2)
		if err != nil {
			return err
		}
		if beta := n.FloatAttr("beta", 1); beta != 1 {
			if c, err = G.Mul(c, G.NewConstant(float64(beta))); err != nil {
				return err
			}
		}
		if y, err = broadcast(y, c, G.Add, G.BroadcastAdd); err != nil {
			return err
		}
	}
	t.set(n, 0, y)
	return nil
}

// matmul follows numpy: a rank-k activation times a 2-D weight is one
// matrix product over the flattened leading axes; two stacks of
// matrices with the same leading axes are a batched product.
func matmul(t *translator, n *graph.Node) error {
	a, err := t.in(n, 0)
	if err != nil {
		return err
	}
	b, err := t.in(n, 1)
	if err != nil {
		return err
	}
	y, err := matMul(a, b)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// matMul is numpy's matmul of a and b for the cases matmul covers.
func matMul(a, b *G.Node) (*G.Node, error) {
	as, bs := a.Shape().Clone(), b.Shape().Clone()
	switch {
	case len(as) == 2 && len(bs) == 2:
		return G.Mul(a, b)
	case len(as) > 2 && len(bs) == 2:
		rows := as.TotalSize() / as[len(as)-1]
		a2, err := G.Reshape(a, []int{rows, as[len(as)-1]})
		if err != nil {
			return nil, err
		}
		p, err := G.Mul(a2, b)
		if err != nil {
			return nil, err
		}
		return G.Reshape(p, append(as[:len(as)-1:len(as)-1], bs[1]))
	case len(as) == len(bs) && len(as) > 2 && as[:len(as)-2].Eq(bs[:len(bs)-2]):
		lead := as[:len(as)-2].TotalSize()
		a3, err := G.Reshape(a, []int{lead, as[len(as)-2], as[len(as)-1]})
		if err != nil {
			return nil, err
		}
		b3, err := G.Reshape(b, []int{lead, bs[len(bs)-2], bs[len(bs)-1]})
		if err != nil {
			return nil, err
		}
		p, err := G.BatchedMatMul(a3, b3)
		if err != nil {
			return nil, err
		}
		return G.Reshape(p, append(as[:len(as)-1:len(as)-1], bs[len(bs)-1]))
	}
	return nil, fmt.Errorf("%w: MatMul of shapes %v and %v", ErrUnsupported, as, bs)
}
