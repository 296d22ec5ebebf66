package prune

import (
	"github.com/pare-dev/pare/graph"
)

// QuantizeLinear and DequantizeLinear on activations pass channels
// through; per-axis scale and zero point on a labeled axis are sliced.
// Blocked quantization (scale of the input's rank) freezes. A
// DequantizeLinear of a constant weight needs nothing here: the weight's
// consumer slices through it (see addDequantParam).

func init() {
	register(ruleFunc(analyzeQDQ), "QuantizeLinear", "DequantizeLinear")
	// onnxruntime's quantizer writes the com.microsoft forms for 16-bit
	// and 4-bit types; same semantics.
	registerMS(ruleFunc(analyzeQDQ), "QuantizeLinear", "DequantizeLinear")
}

func analyzeQDQ(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	a.setShape(y, xs)
	if a.lab(x) == nil {
		return nil
	}
	ss := a.shape(n.Input(1))
	if xs == nil || ss == nil {
		a.freezeInputs(n, n.Name()+": unknown shapes")
		return nil
	}
	if prod(ss) == 1 && len(ss) <= 1 {
		a.copyLabels(x, y)
		return nil
	}
	if len(ss) != 1 {
		a.freezeInputs(n, n.Name()+": blocked quantization")
		return nil
	}
	axis := normAxis(n.IntAttr("axis", 1), len(xs))
	for ax, l := range a.lab(x) {
		if ax == axis {
			if !a.addParam(n.Input(1), 0, l, KindQParam, n) {
				continue
			}
			if zp := n.Input(2); zp != "" && !a.addParam(zp, 0, l, KindQParam, n) {
				continue
			}
		}
		a.setLab(y, ax, l)
	}
	return nil
}
