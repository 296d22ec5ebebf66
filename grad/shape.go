package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Flatten"] = flatten
	rules["Reshape"] = reshape
	rules["Transpose"] = transpose
	rules["Concat"] = concat
	rules["Expand"] = expand
	rules["Unsqueeze"] = reshapeToInferred
	rules["Squeeze"] = reshapeToInferred
}

func flatten(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	s := x.Shape()
	axis := int(n.IntAttr("axis", 1))
	if axis < 0 {
		axis += len(s)
	}
	outer := 1
	for _, d := range s[:axis] {
		outer *= d
	}
	y, err := G.Reshape(x, []int{outer, s.TotalSize() / outer})
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// reshape takes its target from a static shape tensor, with ONNX's 0
// (copy) and −1 (infer) entries.
func reshape(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	want, err := t.ints(n.Input(1))
	if err != nil {
		return err
	}
	s := x.Shape()
	to := make([]int, len(want))
	known, infer := 1, -1
	for i, d := range want {
		switch {
		case d == 0 && n.IntAttr("allowzero", 0) == 0 && i < len(s):
			to[i] = s[i]
		case d == -1:
			infer = i
			continue
		default:
			to[i] = int(d)
		}
		known *= to[i]
	}
	if infer >= 0 {
		if known == 0 {
			return fmt.Errorf("%w: cannot infer a reshape dim", ErrUnsupported)
		}
		to[infer] = s.TotalSize() / known
	}
	y, err := G.Reshape(x, to)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// reshapeToInferred handles ops that only move size-1 axes (Squeeze,
// Unsqueeze) by reshaping to the statically inferred output shape.
func reshapeToInferred(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	dims, err := t.staticDims(n)
	if err != nil {
		return err
	}
	y, err := G.Reshape(x, dims)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

func transpose(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	perm := ints(n.IntsAttr("perm", nil))
	if perm == nil {
		for i := x.Dims() - 1; i >= 0; i-- {
			perm = append(perm, i)
		}
	}
	y, err := Permute(x, perm)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

func concat(t *translator, n *graph.Node) error {
	var xs []*G.Node
	for i := range n.Proto.Input {
		x, err := t.in(n, i)
		if err != nil {
			return err
		}
		xs = append(xs, x)
	}
	axis := int(n.IntAttr("axis", 0))
	if axis < 0 {
		axis += xs[0].Dims()
	}
	y, err := Concat(axis, xs...)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// expand broadcasts x to the static target shape: by adding zeros of
// that shape (the gradient sums back over the repeated axes), or above
// rank 4, where gorgonia's broadcasts stop, by repeating the size-1
// axes (a decoder's grouped-query key/value heads).
func expand(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	dims, err := t.staticDims(n)
	if err != nil {
		return err
	}
	if len(dims) > 4 && !x.IsScalar() {
		if x, err = padRank(x, len(dims)); err != nil {
			return err
		}
		f := make([]int, len(dims))
		for a, d := range dims {
			switch xa := x.Shape()[a]; {
			case xa == d:
				f[a] = 1
			case xa == 1:
				f[a] = d
			default:
				return fmt.Errorf("%w: Expand of %v to %v", ErrUnsupported, x.Shape(), dims)
			}
		}
		y, err := Repeat(x, f)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
	zeros := G.NewTensor(t.g, G.Float64, len(dims), G.WithShape(dims...), G.WithInit(G.Zeroes()), G.WithName(n.Output(0)+"/zeros"))
	y, err := broadcast(x, zeros, G.Add, G.BroadcastAdd)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}
