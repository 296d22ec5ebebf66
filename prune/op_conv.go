package prune

import (
	"slices"

	"github.com/pare-dev/pare/graph"
)

// Conv: W [M, C/g, k...]. Output channels are fresh elements on W axis 0
// and the bias; input channels follow W axis 1. Depthwise (g = C, one
// input channel per group) ties input and output channels, expanded by
// the channel multiplier, and rewrites `group`. Other grouped
// convolutions (ResNeXt, RegNet) couple the channels at the same offset
// of every group (groupedConv).
//
// ConvTranspose: W [C, M/g, k...]. Input channels follow W axis 0, output
// channels are fresh on W axis 1 and the bias; grouped ones are frozen.

func init() {
	register(ruleFunc(analyzeConv), "Conv")
	register(ruleFunc(analyzeConvTranspose), "ConvTranspose")
}

func analyzeConv(a *Analysis, n *graph.Node) error {
	x, w, y := n.Input(0), n.Input(1), n.Output(0)
	xs, ws := a.shape(x), a.shape(w)
	a.setShape(y, convOutShape(n, xs, ws, false))
	a.freezeOtherAxes(x, 1, n.Op()+" mixes this axis")
	xl := a.lab(x)[1]
	if len(ws) < 3 || !a.isParam(w) {
		a.freeze(xl, n.Name()+": weight is not a constant")
		return nil
	}
	a.addMAC(n, w, spatialPositions(a.countShape(y)))
	g := n.IntAttr("group", 1)
	m, cpg := ws[0], ws[1]
	switch {
	case g == 1:
		a.addParam(w, 1, xl, KindWeightIn, n)
		out := a.newElems(int(m), n.Name())
		a.outParams(n, w, 0, out)
		a.setLab(y, 1, out)
	case cpg == 1 && g > 1 && m%g == 0:
		if xl == nil {
			return nil // fixed input channels: the outputs stay fixed too
		}
		mult := int(m / g)
		out := make([]int32, 0, m)
		for _, e := range xl {
			for k := 0; k < mult; k++ {
				out = append(out, e)
			}
		}
		if int64(len(out)) != m {
			a.freeze(xl, n.Name()+": depthwise weight does not match input channels")
			return nil
		}
		a.outParams(n, w, 0, out)
		a.setLab(y, 1, out)
		a.edits = append(a.edits, groupAttr{node: n, dim: DimRef{x, 1}, size: g})
	default:
		a.groupedConv(n, w, y, xl, int(g), int(m), int(cpg))
	}
	return nil
}

// groupedConv handles a Conv of g groups, cpg input channels each. Group
// j reads input channels [j·cpg, (j+1)·cpg) through W axis 1, which
// indexes the offset inside a group, and writes outputs [j·M/g,
// (j+1)·M/g). A channel is the same offset in every group: removing it
// removes one input (or output) channel from each group, so the groups
// stay equal, W stays rectangular and `group` keeps its value. Coarser
// than choosing per group (an index is g channels), but exact, and
// what onnxruntime's grouped kernels need.
func (a *Analysis) groupedConv(n *graph.Node, w, y string, xl []int32, g, m, cpg int) {
	if g < 2 || m%g != 0 || xl != nil && len(xl) != g*cpg {
		a.freeze(xl, n.Name()+": grouped convolution whose channels do not divide into its groups")
		return
	}
	if a.opts.ConvGroups {
		a.wholeGroups(n, w, y, xl, g, m, cpg)
		return
	}
	why := n.Name() + ": the same offset in every group of a grouped convolution"
	if xl != nil {
		a.offsetConvs = append(a.offsetConvs, n.Name())
		a.union(slices.Repeat(xl[:cpg], g), xl, why)
		a.addParam(w, 1, xl[:cpg], KindWeightIn, n)
	}
	out := slices.Repeat(a.newElems(m/g, n.Name()), g) // group j's outputs, laid end to end
	a.outParams(n, w, 0, out)
	a.setLab(y, 1, out)
}

// wholeGroups handles a grouped Conv under Options.ConvGroups: group j's
// input channels [j·cpg, (j+1)·cpg) and its outputs [j·M/g, (j+1)·M/g)
// are one channel of the analysis, so pruning it removes the whole group
// (its filters, the channels it reads and the ones it writes) and
// `group` becomes the kept input channels over cpg. W axis 1 keeps its
// size.
func (a *Analysis) wholeGroups(n *graph.Node, w, y string, xl []int32, g, m, cpg int) {
	if xl == nil {
		return // fixed input channels: every group stays, so do the outputs
	}
	why := n.Name() + ": one group of a grouped convolution"
	out := make([]int32, 0, m)
	for j := range g {
		in := xl[j*cpg : (j+1)*cpg]
		a.union(slices.Repeat(in[:1], cpg), in, why)
		for range m / g {
			out = append(out, in[0])
		}
	}
	a.outParams(n, w, 0, out)
	a.setLab(y, 1, out)
	a.edits = append(a.edits, groupAttr{node: n, dim: DimRef{y, 1}, size: int64(m), per: int64(m / g)})
}

func analyzeConvTranspose(a *Analysis, n *graph.Node) error {
	x, w, y := n.Input(0), n.Input(1), n.Output(0)
	xs, ws := a.shape(x), a.shape(w)
	a.setShape(y, convOutShape(n, xs, ws, true))
	a.freezeOtherAxes(x, 1, n.Op()+" mixes this axis")
	xl := a.lab(x)[1]
	if len(ws) < 3 || !a.isParam(w) {
		a.freeze(xl, n.Name()+": weight is not a constant")
		return nil
	}
	a.addMAC(n, w, spatialPositions(a.countShape(x)))
	if n.IntAttr("group", 1) != 1 {
		a.freeze(xl, n.Name()+": grouped transposed convolution")
		return nil
	}
	a.addParam(w, 0, xl, KindWeightIn, n)
	out := a.newElems(int(ws[1]), n.Name())
	a.outParams(n, w, 1, out)
	a.setLab(y, 1, out)
	return nil
}

// outParams records the output-channel slices of a weight and its bias
// (input 2).
func (a *Analysis) outParams(n *graph.Node, w string, axis int, out []int32) {
	if !a.addParam(w, axis, out, KindWeightOut, n) {
		return
	}
	if b := n.Input(2); b != "" {
		a.addParam(b, 0, out, KindBias, n)
	}
}

// isParam reports whether name is a constant, or a DequantizeLinear of
// one, that pruning may slice.
func (a *Analysis) isParam(name string) bool {
	if p := a.g.Producer(name); p != nil && (p.Op() == "DequantizeLinear" && (p.Domain() == "" || p.Domain() == "com.microsoft") || p.Op() == "Identity" && p.Domain() == "") {
		return a.isParam(p.Input(0))
	}
	_, ok := a.constant(name)
	return ok
}

// freezeOtherAxes freezes labels of value on every axis but keep.
func (a *Analysis) freezeOtherAxes(value string, keep int, reason string) {
	for ax, l := range a.lab(value) {
		if ax != keep {
			a.freeze(l, reason)
		}
	}
}

// convOutShape is the output shape of Conv (or ConvTranspose).
func convOutShape(n *graph.Node, xs, ws []int64, transposed bool) []int64 {
	if len(xs) < 3 || len(ws) != len(xs) {
		return nil
	}
	sp := len(xs) - 2
	out := make([]int64, len(xs))
	out[0] = xs[0]
	if transposed {
		out[1] = ws[1] * n.IntAttr("group", 1)
	} else {
		out[1] = ws[0]
	}
	if os := n.IntsAttr("output_shape", nil); transposed && len(os) == sp {
		copy(out[2:], os)
		return out
	}
	k := n.IntsAttr("kernel_shape", ws[2:])
	outShapeSpatial(n, xs[2:], k, out[2:], transposed)
	return out
}

// outShapeSpatial fills the spatial output dims of a sliding-window op.
func outShapeSpatial(n *graph.Node, in, k []int64, out []int64, transposed bool) {
	sp := len(in)
	strides := n.IntsAttr("strides", nil)
	dil := n.IntsAttr("dilations", nil)
	pads := n.IntsAttr("pads", nil)
	opad := n.IntsAttr("output_padding", nil)
	autoPad := n.StringAttr("auto_pad", "NOTSET")
	ceil := n.IntAttr("ceil_mode", 0) == 1
	at := func(s []int64, i int, def int64) int64 {
		if i < len(s) {
			return s[i]
		}
		return def
	}
	for i := 0; i < sp; i++ {
		if in[i] < 0 || i >= len(k) {
			out[i] = -1
			continue
		}
		s, d := at(strides, i, 1), at(dil, i, 1)
		ek := d*(k[i]-1) + 1
		if transposed {
			out[i] = s*(in[i]-1) + at(opad, i, 0) + ek - at(pads, i, 0) - at(pads, i+sp, 0)
			continue
		}
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out[i] = (in[i] + s - 1) / s
		case "VALID":
			out[i] = (in[i]-ek)/s + 1
		default:
			num := in[i] + at(pads, i, 0) + at(pads, i+sp, 0) - ek
			if ceil {
				out[i] = (num+s-1)/s + 1
				// The last window must start inside the input or left pad.
				if (out[i]-1)*s >= in[i]+at(pads, i, 0) {
					out[i]--
				}
			} else {
				out[i] = num/s + 1
			}
		}
	}
}

// spatialPositions is the product of the dims after the channel axis, or
// -1 when unknown.
func spatialPositions(s []int64) int64 {
	if len(s) < 2 {
		return -1
	}
	return prod(s[2:])
}
