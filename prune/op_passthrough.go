package prune

import (
	"github.com/pare-dev/pare/graph"
)

// Channel-wise ops: activations, casts, dropout and pooling keep every
// channel where it is. Pools change spatial dims only; Pad and Resize
// pass channels through when they leave the channel axis alone; Softmax
// and friends pass channels through unless they normalise over them.

var unaryOps = []string{
	"Relu", "LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "Sigmoid", "HardSigmoid",
	"HardSwish", "Gelu", "Erf", "Tanh", "Softplus", "Softsign", "Mish", "Swish", "Cast", "CastLike",
	"Identity", "Clip", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
	"Round", "Sign", "Sin", "Cos", "Not", "IsNaN", "IsInf", "Shrink",
}

func init() {
	register(ruleFunc(analyzeUnary), unaryOps...)
	register(ruleFunc(analyzeDropout), "Dropout")
	register(ruleFunc(analyzePool), "MaxPool", "AveragePool", "LpPool")
	register(ruleFunc(analyzeGlobalPool), "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
	register(ruleFunc(analyzeSoftmax), "Softmax", "LogSoftmax", "Hardmax")
	register(ruleFunc(analyzePad), "Pad")
	register(ruleFunc(analyzeResize), "Resize", "Upsample")
	register(ruleFunc(analyzeConstant), "Constant")
	register(ruleFunc(analyzeShapeOf), "Shape", "Size")
}

func analyzeUnary(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	for _, extra := range n.Proto.Input[1:] {
		if a.lab(extra) != nil {
			a.freezeInputs(n, n.Name()+": channel-dependent parameter input")
			return nil
		}
	}
	a.setShape(y, a.shape(x))
	a.copyLabels(x, y)
	return nil
}

func analyzeDropout(a *Analysis, n *graph.Node) error {
	x := n.Input(0)
	for _, y := range n.Proto.Output {
		a.setShape(y, a.shape(x))
		a.copyLabels(x, y)
	}
	return nil
}

func analyzePool(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	if len(xs) >= 3 {
		out := append([]int64{}, xs...)
		outShapeSpatial(n, xs[2:], n.IntsAttr("kernel_shape", nil), out[2:], false)
		a.setShape(y, out)
	}
	if len(n.Proto.Output) > 1 && n.Output(1) != "" {
		a.freezeInputs(n, n.Name()+": pooling indices output")
		return nil
	}
	a.freezeOtherAxes(x, 1, n.Name()+": pooled over this axis")
	a.setLab(y, 1, a.lab(x)[1])
	return nil
}

func analyzeGlobalPool(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	if xs := a.shape(x); len(xs) >= 3 {
		out := append([]int64{}, xs...)
		for i := 2; i < len(out); i++ {
			out[i] = 1
		}
		a.setShape(y, out)
	}
	a.freezeOtherAxes(x, 1, n.Name()+": pooled over this axis")
	a.setLab(y, 1, a.lab(x)[1])
	return nil
}

func analyzeSoftmax(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	a.setShape(y, xs)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	def := int64(-1)
	if a.Model.OpsetVersion("") < 13 {
		def = 1
	}
	axis := normAxis(n.IntAttr("axis", def), len(xs))
	coerced := a.Model.OpsetVersion("") < 13
	for ax, l := range a.lab(x) {
		if ax == axis || (coerced && ax > axis) {
			a.freeze(l, n.Name()+": normalises over the channel axis")
			continue
		}
		a.setLab(y, ax, l)
	}
	return nil
}

func analyzePad(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	var pads []int64
	if a.Model.OpsetVersion("") < 11 {
		pads = n.IntsAttr("pads", nil)
	} else if t, ok := a.g.Constant(n.Input(1)); ok {
		pads, _ = graph.Int64s(t)
	}
	if xs == nil || len(pads) != 2*len(xs) || n.Input(3) != "" {
		a.freezeInputs(n, n.Name()+": Pad with unknown pads or axes")
		return nil
	}
	r := len(xs)
	out := make([]int64, r)
	for i := range out {
		out[i] = -1
		if xs[i] >= 0 {
			out[i] = xs[i] + pads[i] + pads[i+r]
		}
	}
	a.setShape(y, out)
	for ax, l := range a.lab(x) {
		if pads[ax] != 0 || pads[ax+r] != 0 {
			a.freeze(l, n.Name()+": pads the channel axis")
			continue
		}
		a.setLab(y, ax, l)
	}
	return nil
}

func analyzeResize(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	// Scales: input 1 (Upsample, Resize-10) or 2; sizes: input 3.
	var scales []float32
	si := 2
	if n.Op() == "Upsample" || a.Model.OpsetVersion("") < 11 {
		si = 1
	}
	if t, ok := a.g.Constant(n.Input(si)); ok {
		scales, _ = graph.Float32s(t)
	}
	if n.Op() == "Upsample" && a.Model.OpsetVersion("") < 9 {
		scales = n.FloatsAttr("scales", nil)
	}
	var sizes []int64
	if t, ok := a.g.Constant(n.Input(3)); ok {
		sizes, _ = graph.Int64s(t)
	}
	if xs == nil || n.Attr("axes") != nil || (len(scales) != len(xs) && len(sizes) != len(xs)) {
		a.freezeInputs(n, n.Name()+": Resize with unknown scales or sizes")
		return nil
	}
	out := make([]int64, len(xs))
	for i := range out {
		switch {
		case len(sizes) == len(xs):
			out[i] = sizes[i]
		case xs[i] >= 0:
			out[i] = int64(float32(xs[i]) * scales[i])
		default:
			out[i] = -1
		}
	}
	for ax, l := range a.lab(x) {
		if len(sizes) == len(xs) {
			if sizes[ax] != int64(len(l)) {
				a.freeze(l, n.Name()+": resizes the channel axis")
				continue
			}
			a.edits = append(a.edits, constEntry{node: n, input: 3, entry: ax, dim: DimRef{x, ax}, size: sizes[ax]})
		} else if scales[ax] != 1 {
			a.freeze(l, n.Name()+": resizes the channel axis")
			continue
		}
		a.setLab(y, ax, l)
	}
	a.setShape(y, out)
	return nil
}

func analyzeConstant(a *Analysis, n *graph.Node) error {
	if t, err := graph.ConstantNodeTensor(n.Proto); err == nil {
		a.setShape(n.Output(0), append([]int64{}, t.Dims...))
	}
	return nil
}

// exposedAxes returns the axes of x whose sizes the readers of Shape(x)
// take: Gather with constant indices, or Slice with constant bounds
// (Shape(q)[-1:], the head size for the softmax scale); start/end
// attributes shift them. ok is false when a reader may take any axis.
func (a *Analysis) exposedAxes(n *graph.Node, rank int) (map[int]bool, bool) {
	lo, hi := 0, rank
	if v := n.Attr("start"); v != nil {
		lo = clampAxis(int(v.GetI()), rank)
	}
	if v := n.Attr("end"); v != nil {
		hi = clampAxis(int(v.GetI()), rank)
	}
	width := max(hi-lo, 0)
	exposed := map[int]bool{}
	for _, c := range a.g.Consumers(n.Output(0)) {
		if c.Input(0) != n.Output(0) || c.Domain() != "" {
			return nil, false
		}
		switch c.Op() {
		case "Gather":
			t, ok := a.g.Constant(c.Input(1))
			if !ok {
				return nil, false
			}
			idx, err := graph.Int64s(t)
			if err != nil {
				return nil, false
			}
			for _, i := range idx {
				if i < 0 {
					i += int64(width)
				}
				if i < 0 || i >= int64(width) {
					return nil, false
				}
				exposed[lo+int(i)] = true
			}
		case "Slice":
			st, ok1 := a.constInts(c, 1)
			en, ok2 := a.constInts(c, 2)
			if !ok1 || !ok2 || len(st) != 1 || len(en) != 1 {
				return nil, false
			}
			if c.Input(4) != "" {
				if step, ok := a.constInts(c, 4); !ok || len(step) != 1 || step[0] != 1 {
					return nil, false
				}
			}
			if c.Input(3) != "" {
				ax, ok := a.constInts(c, 3)
				if !ok || len(ax) != 1 || (ax[0] != 0 && ax[0] != -1) {
					return nil, false
				}
			}
			b, e := clampAxis(int(max(min(st[0], 1<<30), -1<<30)), width), clampAxis(int(max(min(en[0], 1<<30), -1<<30)), width)
			for i := b; i < e; i++ {
				exposed[lo+i] = true
			}
		default:
			return nil, false
		}
	}
	return exposed, true
}

// clampAxis normalises a Python-style bound into [0, n].
func clampAxis(i, n int) int {
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

// constInts reads input i of n as constant integers.
func (a *Analysis) constInts(n *graph.Node, i int) ([]int64, bool) {
	t, ok := a.g.Constant(n.Input(i))
	if !ok {
		return nil, false
	}
	v, err := graph.Int64s(t)
	return v, err == nil
}

// analyzeShapeOf: Shape and Size expose dims. A graph computing with the
// channel count of a labeled dim could break when the count changes, so
// the labels freeze unless every reader of the shape is a Gather or Slice
// of constant positions that avoid the labeled axes (the batch, say; or
// head_dim only, for a softmax scale computed from the head size, which
// whole-head pruning leaves unchanged), or unless nothing reads it.
func analyzeShapeOf(a *Analysis, n *graph.Node) error {
	x := n.Input(0)
	xs := a.shape(x)
	if n.Op() == "Size" {
		a.setShape(n.Output(0), []int64{})
		a.freezeValue(x, n.Name()+": Size of a pruned value")
		return nil
	}
	if xs != nil && n.Attr("start") == nil && n.Attr("end") == nil {
		a.setShape(n.Output(0), []int64{int64(len(xs))})
	}
	if a.lab(x) == nil {
		return nil
	}
	if v := a.g.Value(n.Output(0)); v != nil && !v.IsOutput && len(a.g.Consumers(n.Output(0))) == 0 {
		return nil // nothing reads the sizes
	}
	exposed, safe := a.exposedAxes(n, len(xs))
	safe = safe && xs != nil
	var hit [][]int32
	for ax, l := range a.lab(x) {
		if !safe || exposed[ax] {
			hit = append(hit, l)
		}
	}
	if len(hit) == 0 {
		return nil
	}
	// Sizes that only end in Reshape shapes or Slice bounds are replaced
	// by constants when pruning (shapecalc.go).
	reason := n.Name() + ": the graph computes with this dim's size"
	sinks, why := a.shapeSinks(n.Output(0))
	if why != "" {
		for _, l := range hit {
			a.freeze(l, reason+" (read by "+why+")")
		}
		return nil
	}
	a.exposures = append(a.exposures, exposure{labels: hit, sinks: sinks, reason: reason})
	return nil
}
