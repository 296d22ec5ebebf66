package graph

import (
	"slices"
	"strings"

	"github.com/pare-dev/pare/onnx"
)

// matmulShape applies numpy matmul rules: 1-D operands get a 1 prepended
// (A) or appended (B) and removed again; batch dims broadcast.
func matmulShape(a, b TensorShape) (TensorShape, error) {
	if !a.Ranked || !b.Ranked {
		return TensorShape{}, nil
	}
	if len(a.Dims) == 0 || len(b.Dims) == 0 {
		return TensorShape{}, mismatch("matmul of a scalar")
	}
	ad, bd := a.Dims, b.Dims
	if len(ad) == 1 {
		ad = []Dim{DimOf(1), ad[0]}
	}
	if len(bd) == 1 {
		bd = []Dim{bd[0], DimOf(1)}
	}
	ka, kb := ad[len(ad)-1], bd[len(bd)-2]
	if ka.IsKnown() && kb.IsKnown() && ka != kb {
		return TensorShape{}, mismatch("matmul inner dims %v and %v differ", ka, kb)
	}
	batch, err := broadcastShapes(ShapeOf(0, ad[:len(ad)-2]...), ShapeOf(0, bd[:len(bd)-2]...))
	if err != nil {
		return TensorShape{}, err
	}
	dims := batch.Dims
	if len(a.Dims) > 1 {
		dims = append(dims, ad[len(ad)-2])
	}
	if len(b.Dims) > 1 {
		dims = append(dims, bd[len(bd)-1])
	}
	return ShapeOf(0, dims...), nil
}

func inferMatMul(c *nodeCtx) error {
	t, err := matmulShape(c.in(0), c.in(1))
	if err != nil {
		return err
	}
	t.Elem = c.in(0).Elem
	if c.n.Op() == "MatMulInteger" {
		t.Elem = onnx.TensorProto_INT32
	}
	c.out(0, t)
	return nil
}

// inferQLinearMatMul: inputs a, a_scale, a_zero_point, b, b_scale,
// b_zero_point, y_scale, y_zero_point.
func inferQLinearMatMul(c *nodeCtx) error {
	t, err := matmulShape(c.in(0), c.in(3))
	if err != nil {
		return err
	}
	t.Elem = c.in(7).Elem
	c.out(0, t)
	return nil
}

// inferMatMulNBits: A [..., K] times the packed B gives [..., N].
func inferMatMulNBits(c *nodeCtx) error {
	a := c.in(0)
	t := TensorShape{Elem: a.Elem}
	if a.Ranked {
		if len(a.Dims) == 0 {
			return mismatch("matmul of a scalar")
		}
		k := DimOf(c.n.IntAttr("K", 0))
		if last := a.Dims[len(a.Dims)-1]; last.IsKnown() && last != k {
			return mismatch("input has K=%v, attribute K=%v", last, k)
		}
		t.Ranked = true
		t.Dims = append(slices.Clone(a.Dims[:len(a.Dims)-1]), DimOf(c.n.IntAttr("N", 0)))
	}
	c.out(0, t)
	return nil
}

// inferGemm: A [M, K] (or [K, M] with transA), B [K, N] (or [N, K]).
func inferGemm(c *nodeCtx) error {
	a, b := c.in(0), c.in(1)
	t := TensorShape{Elem: a.Elem, Ranked: true, Dims: []Dim{{}, {}}}
	if a.Ranked {
		if len(a.Dims) != 2 {
			return mismatch("A has rank %d, want 2", len(a.Dims))
		}
		t.Dims[0] = a.Dims[c.n.IntAttr("transA", 0)&1]
	}
	if b.Ranked {
		if len(b.Dims) != 2 {
			return mismatch("B has rank %d, want 2", len(b.Dims))
		}
		t.Dims[1] = b.Dims[1-c.n.IntAttr("transB", 0)&1]
	}
	if a.Ranked && b.Ranked {
		ka := a.Dims[1-c.n.IntAttr("transA", 0)&1]
		kb := b.Dims[c.n.IntAttr("transB", 0)&1]
		if ka.IsKnown() && kb.IsKnown() && ka != kb {
			return mismatch("inner dims %v and %v differ", ka, kb)
		}
	}
	c.out(0, t)
	return nil
}

// inferEinsum handles explicit and implicit equations, with an ellipsis.
func inferEinsum(c *nodeCtx) error {
	eq := strings.ReplaceAll(c.n.StringAttr("equation", ""), " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	out := TensorShape{Elem: c.in(0).Elem}
	if len(terms) != len(c.n.Proto.Input) {
		c.out(0, out)
		return nil
	}
	sizes := map[rune]Dim{}
	counts := map[rune]int{}
	var ellipsis TensorShape
	ellipsis.Ranked = true
	for i, term := range terms {
		x := c.in(i)
		if !x.Ranked {
			c.out(0, out)
			return nil
		}
		before, after, hasEll := strings.Cut(term, "...")
		letters := []rune(before + after)
		nEll := len(x.Dims) - len(letters)
		if nEll < 0 || (!hasEll && nEll != 0) {
			return mismatch("equation term %q for rank %d", term, len(x.Dims))
		}
		dims := x.Dims
		if hasEll {
			e, err := broadcastShapes(ellipsis, ShapeOf(0, dims[len([]rune(before)):len([]rune(before))+nEll]...))
			if err != nil {
				return err
			}
			ellipsis = e
			dims = append(slices.Clone(dims[:len([]rune(before))]), dims[len([]rune(before))+nEll:]...)
		}
		for j, r := range letters {
			counts[r]++
			if prev, ok := sizes[r]; ok {
				b, ok := broadcastDim(prev, dims[j])
				if !ok {
					return mismatch("index %q has sizes %v and %v", r, prev, dims[j])
				}
				sizes[r] = b
			} else {
				sizes[r] = dims[j]
			}
		}
	}
	if !explicit {
		var once []rune
		for r, n := range counts {
			if n == 1 {
				once = append(once, r)
			}
		}
		slices.Sort(once)
		rhs = "..." + string(once)
	}
	out.Ranked = true
	before, after, hasEll := strings.Cut(rhs, "...")
	add := func(s string) error {
		for _, r := range s {
			d, ok := sizes[r]
			if !ok {
				return mismatch("output index %q not in the inputs", r)
			}
			out.Dims = append(out.Dims, d)
		}
		return nil
	}
	if err := add(before); err != nil {
		return err
	}
	if hasEll {
		out.Dims = append(out.Dims, ellipsis.Dims...)
	}
	if err := add(after); err != nil {
		return err
	}
	c.out(0, out)
	return nil
}
