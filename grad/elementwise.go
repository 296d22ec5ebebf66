package grad

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Add"] = binary(G.Add, G.BroadcastAdd)
	rules["Sub"] = binary(G.Sub, G.BroadcastSub)
	rules["Mul"] = binary(G.HadamardProd, G.BroadcastHadamardProd)
	rules["Div"] = binary(G.HadamardDiv, G.BroadcastHadamardDiv)
	rules["Relu"] = unary(relu)
	rules["Sqrt"] = unary(G.Sqrt)
	rules["Tanh"] = unary(G.Tanh)
	rules["Sigmoid"] = unary(G.Sigmoid)
	rules["Neg"] = unary(G.Neg)
	// Sin and Cos: a decoder's rotary tables, folded at build time.
	rules["Sin"] = unary(G.Sin)
	rules["Cos"] = unary(G.Cos)
	rules["Pow"] = pow
	rules["Reciprocal"] = unary(G.Inverse)
	rules["Identity"] = unary(func(x *G.Node) (*G.Node, error) { return x, nil })
	rules["Dropout"] = unary(func(x *G.Node) (*G.Node, error) { return x, nil }) // inference: identity
}

func unary(f func(*G.Node) (*G.Node, error)) rule {
	return func(t *translator, n *graph.Node) error {
		x, err := t.in(n, 0)
		if err != nil {
			return err
		}
		y, err := f(x)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
}

type binFn func(a, b *G.Node) (*G.Node, error)
type bcastFn func(a, b *G.Node, left, right []byte) (*G.Node, error)

func binary(same binFn, bc bcastFn) rule {
	return func(t *translator, n *graph.Node) error {
		a, err := t.in(n, 0)
		if err != nil {
			return err
		}
		b, err := t.in(n, 1)
		if err != nil {
			return err
		}
		y, err := broadcast(a, b, same, bc)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
}

// broadcast applies an elementwise op with numpy broadcasting: scalars
// go straight to gorgonia's scalar-tensor ops, other operands are padded
// to a common rank and repeated along their size-1 axes.
func broadcast(a, b *G.Node, same binFn, bc bcastFn) (*G.Node, error) {
	if !a.IsScalar() && !b.IsScalar() {
		// Not beside a true scalar: gorgonia refuses to mix its
		// scalars with rank-0 tensors (DeiT's 1/√d times 1.0).
		a, b = asScalar(a), asScalar(b)
	}
	if a.IsScalar() || b.IsScalar() || a.Shape().Eq(b.Shape()) {
		return same(a, b)
	}
	as, bs := a.Shape(), b.Shape()
	rank := max(len(as), len(bs))
	var err error
	if a, err = padRank(a, rank); err != nil {
		return nil, err
	}
	if b, err = padRank(b, rank); err != nil {
		return nil, err
	}
	as, bs = a.Shape(), b.Shape()
	var left, right []byte
	for i := 0; i < rank; i++ {
		switch {
		case as[i] == bs[i]:
		case as[i] == 1:
			left = append(left, byte(i))
		case bs[i] == 1:
			right = append(right, byte(i))
		default:
			return nil, fmt.Errorf("%w: shapes %v and %v do not broadcast", ErrUnsupported, as, bs)
		}
	}
	if rank > 4 || len(left) > 1 || len(right) > 1 {
		// gorgonia's broadcasts stop at rank 4, and over two axes or
		// more of one operand they can corrupt the operands' values
		// between runs (measured: [2,3,4,5]+[1,1,1,5] drifts by 1e6
		// per run, and ConvNeXt's and Swin's channels-last norms got
		// gradients that finite differences contradict): repeat the
		// size-1 axes of each operand to the common shape instead
		// (Repeat sums the gradient back).
		if a, err = repeatTo(a, bs); err != nil {
			return nil, err
		}
		if b, err = repeatTo(b, as); err != nil {
			return nil, err
		}
		return same(a, b)
	}
	return bc(a, b, left, right)
}

// asScalar turns a one-element tensor into a scalar node.
func asScalar(x *G.Node) *G.Node {
	if x.IsScalar() || x.Shape().TotalSize() != 1 {
		return x
	}
	s, err := G.Reshape(x, tensor.ScalarShape())
	if err != nil {
		return x
	}
	return s
}

// padRank prepends size-1 axes up to rank.
func padRank(x *G.Node, rank int) (*G.Node, error) {
	s := x.Shape()
	if len(s) == rank {
		return x, nil
	}
	to := make([]int, rank)
	for i := range to {
		to[i] = 1
	}
	copy(to[rank-len(s):], s)
	return G.Reshape(x, to)
}

// pow raises x to a constant scalar exponent: Square for 2 (the
// written-out norms' x²), Sqrt for ½, gorgonia's Pow otherwise.
func pow(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	tp, ok := t.m.Graph.Constant(n.Input(1))
	if !ok {
		return fmt.Errorf("%w: Pow exponent %s is not a constant", ErrUnsupported, n.Input(1))
	}
	e, err := graph.Float32s(tp)
	if err != nil || len(e) != 1 {
		return fmt.Errorf("%w: Pow exponent %s is not one number", ErrUnsupported, n.Input(1))
	}
	var y *G.Node
	switch e[0] {
	case 1:
		y = x
	case 2:
		y, err = G.Square(x)
	case 0.5:
		y, err = G.Sqrt(x)
	default:
		y, err = G.Pow(x, G.NewConstant(float64(e[0])))
	}
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// repeatTo repeats the size-1 axes of x where other is larger.
func repeatTo(x *G.Node, other tensor.Shape) (*G.Node, error) {
	f := make([]int, x.Dims())
	some := false
	for a, d := range x.Shape() {
		f[a] = 1
		if d == 1 && other[a] > 1 {
			f[a], some = other[a], true
		}
	}
	if !some {
		return x, nil
	}
	return Repeat(x, f)
}

func relu(x *G.Node) (*G.Node, error) { return Clamp(x, 0, math.Inf(1)) }
