package grad

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["Clip"] = clipRule
	rules["HardSigmoid"] = hardSigmoidRule
	rules["HardSwish"] = hardSwishRule
}

// clip is min(max(x, lo), hi), an infinite bound dropping its side.
func clip(x *G.Node, lo, hi float64) (*G.Node, error) {
	if math.IsInf(lo, -1) && math.IsInf(hi, 1) {
		return x, nil
	}
	return Clamp(x, lo, hi)
}

func clipRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if n.Attr("min") != nil || n.Attr("max") != nil { // opset < 11
		lo = float64(n.FloatAttr("min", float32(math.Inf(-1))))
		hi = float64(n.FloatAttr("max", float32(math.Inf(1))))
	}
	for i, b := range []*float64{&lo, &hi} {
		name := n.Input(i + 1)
		if name == "" {
			continue
		}
		v, err := t.m.Graph.ConstantFloat64s(name)
		if err != nil || len(v) != 1 {
			return fmt.Errorf("%w: Clip bound %s is not a constant scalar", ErrUnsupported, name)
		}
		*b = v[0]
	}
	if lo > hi {
		return fmt.Errorf("%w: Clip min %g > max %g", ErrUnsupported, lo, hi)
	}
	y, err := clip(x, lo, hi)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// hardSigmoid is clip(αx+β, 0, 1).
func hardSigmoid(x *G.Node, alpha, beta float64) (*G.Node, error) {
	a, err := G.Mul(x, G.NewConstant(alpha))
	if err != nil {
		return nil, err
	}
	if a, err = G.Add(a, G.NewConstant(beta)); err != nil {
		return nil, err
	}
	return clip(a, 0, 1)
}

func hardSigmoidRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	y, err := hardSigmoid(x, float64(n.FloatAttr("alpha", 0.2)), float64(n.FloatAttr("beta", 0.5)))
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// hardSwishRule is x·hardsigmoid(x) with α = 1/6, β = 1/2.
func hardSwishRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	h, err := hardSigmoid(x, 1.0/6, 0.5)
	if err != nil {
		return err
	}
	y, err := G.HadamardProd(x, h)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}
