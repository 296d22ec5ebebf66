package grad

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Erf"] = unary(Erf)
	rules["Gelu"] = gelu
}

// Erf applies the error function elementwise. gorgonia has no erf, so
// erfOp implements its Op interface with a symbolic derivative
// (2/√π·exp(−x²)), built from gorgonia's own differentiable ops.
func Erf(x *G.Node) (*G.Node, error) { return G.ApplyOp(erfOp{}, x) }

type erfOp struct{}

func (erfOp) Arity() int { return 1 }

func (erfOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (erfOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("erf: input shape is %T", in[0])
	}
	return s.Clone(), nil
}

func (erfOp) Do(in ...G.Value) (G.Value, error) {
	switch x := in[0].(type) {
	case *G.F64:
		return G.NewF64(math.Erf(float64(*x))), nil
	case tensor.Tensor:
		src, ok := x.Data().([]float64)
		if !ok {
			return nil, fmt.Errorf("erf: %v data (float64 only)", x.Dtype())
		}
		out := make([]float64, len(src))
		for i, v := range src {
			out[i] = math.Erf(v)
		}
		return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(out)), nil
	default:
		return nil, fmt.Errorf("erf: value of type %T", in[0])
	}
}

func (erfOp) ReturnsPtr() bool      { return false }
func (erfOp) CallsExtern() bool     { return false }
func (erfOp) OverwritesInput() int  { return -1 }
func (erfOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "erf") }
func (erfOp) Hashcode() uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, "erf")
	return h.Sum32()
}
func (erfOp) String() string { return "Erf" }

// DiffWRT: the one input is differentiable.
func (erfOp) DiffWRT(int) []bool { return []bool{true} }

// SymDiff returns grad·2/√π·exp(−x²).
func (erfOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	sq, err := G.Square(in[0])
	if err != nil {
		return nil, err
	}
	neg, err := G.Neg(sq)
	if err != nil {
		return nil, err
	}
	e, err := G.Exp(neg)
	if err != nil {
		return nil, err
	}
	d, err := G.Mul(e, G.NewConstant(2/math.Sqrt(math.Pi)))
	if err != nil {
		return nil, err
	}
	g, err := G.HadamardProd(d, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// gelu is Gelu (opset 20) in its exact form, 0.5·x·(1+erf(x/√2)).
func gelu(t *translator, n *graph.Node) error {
	if a := n.StringAttr("approximate", "none"); a != "none" {
		return fmt.Errorf("%w: Gelu approximate=%s", ErrUnsupported, a)
	}
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	s, err := G.Mul(x, G.NewConstant(1/math.Sqrt2))
	if err != nil {
		return err
	}
	e, err := Erf(s)
	if err != nil {
		return err
	}
	if e, err = G.Add(e, G.NewConstant(1.0)); err != nil {
		return err
	}
	h, err := G.Mul(x, G.NewConstant(0.5))
	if err != nil {
		return err
	}
	y, err := G.HadamardProd(h, e)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}
