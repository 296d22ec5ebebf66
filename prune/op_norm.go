package prune

import (
	"github.com/pare-dev/pare/graph"
)

// BatchNormalization and InstanceNormalization: per-channel parameters on
// axis 1 are sliced; channels pass through. LayerNormalization over the
// last axis only: gamma and beta are sliced and the group is marked
// inexact (the statistics run over the kept channels only). Layer norms
// over several axes touching a channel, and GroupNormalization, freeze.

func init() {
	register(ruleFunc(analyzeBatchNorm), "BatchNormalization")
	register(ruleFunc(analyzeInstanceNorm), "InstanceNormalization")
	register(ruleFunc(analyzeLayerNorm), "LayerNormalization")
	register(ruleFunc(analyzeGroupNorm), "GroupNormalization")
}

func analyzeBatchNorm(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	a.setShape(y, a.shape(x))
	if len(n.Proto.Output) > 1 {
		a.freezeInputs(n, n.Name()+": training-mode BatchNormalization")
		return nil
	}
	a.freezeOtherAxes(x, 1, n.Name()+": normalised over this axis")
	l := a.lab(x)[1]
	kinds := []string{KindNormScale, KindNormBias, KindNormStat, KindNormStat}
	for i, kind := range kinds {
		if !a.addParam(n.Input(i+1), 0, l, kind, n) {
			return nil
		}
	}
	a.setLab(y, 1, l)
	return nil
}

func analyzeInstanceNorm(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	a.setShape(y, a.shape(x))
	a.freezeOtherAxes(x, 1, n.Name()+": normalised over this axis")
	l := a.lab(x)[1]
	if a.addParam(n.Input(1), 0, l, KindNormScale, n) && a.addParam(n.Input(2), 0, l, KindNormBias, n) {
		a.setLab(y, 1, l)
	}
	return nil
}

func analyzeLayerNorm(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	a.setShape(y, xs)
	if len(n.Proto.Output) > 1 {
		a.freezeInputs(n, n.Name()+": LayerNormalization statistics outputs")
		return nil
	}
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	r := len(xs)
	axis := normAxis(n.IntAttr("axis", -1), r)
	for ax, l := range a.lab(x) {
		switch {
		case ax < axis:
			a.setLab(y, ax, l)
		case axis == r-1:
			a.markInexact(l, n.Name()+": layer norm over the channel axis")
			if a.addParam(n.Input(1), 0, l, KindNormScale, n) &&
				(n.Input(2) == "" || a.addParam(n.Input(2), 0, l, KindNormBias, n)) {
				a.setLab(y, ax, l)
			}
		default:
			a.freeze(l, n.Name()+": layer norm over several axes")
		}
	}
	return nil
}

func analyzeGroupNorm(a *Analysis, n *graph.Node) error {
	a.setShape(n.Output(0), a.shape(n.Input(0)))
	a.freezeInputs(n, n.Name()+": GroupNormalization channels are not pruned")
	return nil
}
