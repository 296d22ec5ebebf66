package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["BatchNormalization"] = batchNorm
	rules["LayerNormalization"] = layerNorm
}

// batchNorm is the inference form: y = (x−mean)·scale/√(var+ε) + bias,
// with the running statistics constant and scale and bias weights.
func batchNorm(t *translator, n *graph.Node) error {
	if n.IntAttr("training_mode", 0) != 0 {
		return fmt.Errorf("%w: training_mode BatchNormalization", ErrUnsupported)
	}
	var in [5]*G.Node
	for i := range in {
		v, err := t.in(n, i)
		if err != nil {
			return err
		}
		in[i] = v
	}
	x, scale, bias, mean, variance := in[0], in[1], in[2], in[3], in[4]
	eps := G.NewConstant(float64(n.FloatAttr("epsilon", 1e-5)))
	ve, err := G.Add(variance, eps)
	if err != nil {
		return err
	}
	inv, err := invSqrt(ve)
	if err != nil {
		return err
	}
	a, err := G.HadamardProd(scale, inv) // per-channel gain
	if err != nil {
		return err
	}
	ma, err := G.HadamardProd(mean, a)
	if err != nil {
		return err
	}
	b, err := G.Sub(bias, ma) // per-channel shift
	if err != nil {
		return err
	}
	y, err := mulChannel(x, a)
	if err != nil {
		return err
	}
	if y, err = addChannel(y, b); err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// layerNorm normalises over the last axis (the only axis the fixtures
// use) and applies scale and bias.
func layerNorm(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	rank := x.Dims()
	if axis := n.IntAttr("axis", -1); axis != -1 && axis != int64(rank-1) {
		return fmt.Errorf("%w: LayerNormalization over axis %d (only the last)", ErrUnsupported, axis)
	}
	scale, err := t.in(n, 1)
	if err != nil {
		return err
	}
	eps := float64(n.FloatAttr("epsilon", 1e-5))
	xhat, err := normalizeLast(x, eps)
	if err != nil {
		return err
	}
	y, err := broadcast(xhat, scale, G.HadamardProd, G.BroadcastHadamardProd)
	if err != nil {
		return err
	}
	if n.Input(2) != "" {
		bias, err := t.in(n, 2)
		if err != nil {
			return err
		}
		if y, err = broadcast(y, bias, G.Add, G.BroadcastAdd); err != nil {
			return err
		}
	}
	t.set(n, 0, y)
	return nil
}

// normalizeLast returns (x−mean)/√(var+ε) along the last axis.
func normalizeLast(x *G.Node, eps float64) (*G.Node, error) {
	last := x.Dims() - 1
	keep := append([]int(nil), x.Shape()...)
	keep[last] = 1
	mean, err := G.Mean(x, last)
	if err != nil {
		return nil, err
	}
	if mean, err = G.Reshape(mean, keep); err != nil {
		return nil, err
	}
	xc, err := broadcast(x, mean, G.Sub, G.BroadcastSub)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(xc)
	if err != nil {
		return nil, err
	}
	variance, err := G.Mean(sq, last)
	if err != nil {
		return nil, err
	}
	if variance, err = G.Add(variance, G.NewConstant(eps)); err != nil {
		return nil, err
	}
	inv, err := invSqrt(variance)
	if err != nil {
		return nil, err
	}
	if inv, err = G.Reshape(inv, keep); err != nil {
		return nil, err
	}
	return broadcast(xc, inv, G.HadamardProd, G.BroadcastHadamardProd)
}

// invSqrt is 1/√x as two ops: gorgonia's InverseSqrt has a wrong
// derivative (TestDebugOps measured it against finite differences).
func invSqrt(x *G.Node) (*G.Node, error) {
	s, err := G.Sqrt(x)
	if err != nil {
		return nil, err
	}
	return G.Inverse(s)
}
