package grad

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["GlobalAveragePool"] = unary(globalAveragePool)
	rules["MaxPool"] = maxPool
	rules["AveragePool"] = averagePoolRule
	rules["Softmax"] = softmax
}

// maxPool translates a 2-D MaxPool. Pads that are asymmetric, given by
// auto_pad, or that ceil_mode adds at the end (GoogLeNet's and
// SqueezeNet's pools) become an explicit Pad of −∞ before an unpadded
// pool: −∞ is never a window's maximum, as the pool's own padding is
// not, and the gradient crops the padding off again. The end padding is
// read from the output size shape inference gives, so the pool produces
// exactly the windows onnxruntime does.
func maxPool(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	if len(n.Proto.Output) > 1 && n.Output(1) != "" {
		return fmt.Errorf("%w: MaxPool with its Indices output", ErrUnsupported)
	}
	k, stride, err := poolWindow(n, x)
	if err != nil {
		return err
	}
	before, after, plain, err := poolPads(t, n, x.Shape(), k, stride)
	if err != nil {
		return err
	}
	if plain {
		y, err := G.MaxPool2D(x, tensor.Shape(k), []int{before[2], before[3]}, stride)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
	padded, err := Pad(x, before, after, math.Inf(-1))
	if err != nil {
		return err
	}
	y, err := G.MaxPool2D(padded, tensor.Shape(k), []int{0, 0}, stride)
	if err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}

// poolWindow returns the kernel and strides of pool node n over x,
// refusing what the pools here do not cover: other than 2-D, dilated.
func poolWindow(n *graph.Node, x *G.Node) (k, stride []int, err error) {
	k = ints(n.IntsAttr("kernel_shape", nil))
	if x.Dims() != 4 || len(k) != 2 {
		return nil, nil, fmt.Errorf("%w: only 2-D pools", ErrUnsupported)
	}
	for _, d := range n.IntsAttr("dilations", nil) {
		if d != 1 {
			return nil, nil, fmt.Errorf("%w: dilated %s", ErrUnsupported, n.Op())
		}
	}
	return k, ints(n.IntsAttr("strides", []int64{1, 1})), nil
}

// poolPads returns the padding of a 2-D pool over an input of shape in
// (per axis of the 4-D input, before and after), and whether it is the
// plain case gorgonia's pools take (symmetric, no ceil_mode or
// auto_pad). Otherwise the end padding is what the inferred output size
// needs: (out−1)·stride + kernel of the padded input.
func poolPads(t *translator, n *graph.Node, in tensor.Shape, k, stride []int) (before, after []int, plain bool, err error) {
	pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
	autoPad := n.StringAttr("auto_pad", "NOTSET")
	if len(pads) != 4 {
		return nil, nil, false, fmt.Errorf("%w: %d pads for a 2-D pool", ErrUnsupported, len(pads))
	}
	before, after = []int{0, 0, 0, 0}, []int{0, 0, 0, 0}
	if n.IntAttr("ceil_mode", 0) == 0 && autoPad == "NOTSET" && pads[0] == pads[2] && pads[1] == pads[3] {
		before[2], before[3], after[2], after[3] = int(pads[0]), int(pads[1]), int(pads[0]), int(pads[1])
		return before, after, true, nil
	}
	out, ok := t.shapes.Of(n.Output(0))
	dims, known := out.Ints()
	if !ok || !known || len(dims) != 4 {
		return nil, nil, false, fmt.Errorf("%w: %s output %s shape not static", ErrUnsupported, n.Op(), n.Output(0))
	}
	for a := range 2 {
		need := (int(dims[2+a])-1)*stride[a] + k[a] - in[2+a]
		switch autoPad {
		case "NOTSET":
			before[2+a] = int(pads[a])
			after[2+a] = max(need-before[2+a], int(pads[2+a]))
		case "SAME_UPPER":
			before[2+a] = max(need, 0) / 2
			after[2+a] = max(need, 0) - before[2+a]
		case "SAME_LOWER":
			after[2+a] = max(need, 0) / 2
			before[2+a] = max(need, 0) - after[2+a]
		case "VALID":
			after[2+a] = max(need, 0)
		default:
			return nil, nil, false, fmt.Errorf("%w: %s auto_pad %s", ErrUnsupported, n.Op(), autoPad)
		}
	}
	return before, after, false, nil
}

// averagePoolRule translates a 2-D AveragePool: the sum over each
// window (a depthwise GroupConv of ones over the zero-padded input)
// times the reciprocal of the window's count. The count is the window's
// positions inside the input, and with count_include_pad inside the
// explicit pads too; padding that ceil_mode or auto_pad adds beyond
// them never counts, as in onnxruntime.
func averagePoolRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	k, stride, err := poolWindow(n, x)
	if err != nil {
		return err
	}
	before, after, plain, err := poolPads(t, n, x.Shape(), k, stride)
	if err != nil {
		return err
	}
	include := n.IntAttr("count_include_pad", 0) != 0
	if plain && (include || before[2]+before[3] == 0) {
		y, err := averagePool(x, tensor.Shape(k), []int{before[2], before[3]}, stride)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
	padded, err := Pad(x, before, after, 0)
	if err != nil {
		return err
	}
	c := x.Shape()[1]
	ones := make([]float64, c*k[0]*k[1])
	for i := range ones {
		ones[i] = 1
	}
	w := G.NewConstant(tensor.New(tensor.WithShape(c, 1, k[0], k[1]), tensor.WithBacking(ones)))
	sum, err := GroupConv(padded, w, c, []int{0, 0}, stride, []int{1, 1})
	if err != nil {
		return err
	}
	os := sum.Shape()
	// The counted span of axis a: the input, and the explicit pads when
	// they count.
	lo, hi := []int{0, 0}, []int{x.Shape()[2], x.Shape()[3]}
	if include {
		pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
		if n.StringAttr("auto_pad", "NOTSET") != "NOTSET" {
			// auto_pad's padding is the one count_include_pad counts.
			pads = []int64{int64(before[2]), int64(before[3]), int64(after[2]), int64(after[3])}
		}
		for a := range 2 {
			lo[a] -= int(pads[a])
			hi[a] += int(pads[2+a])
		}
	}
	recip := make([]float64, os[2]*os[3])
	for i := range os[2] {
		for j := range os[3] {
			count := 1
			for a, o := range []int{i, j} {
				start := o*stride[a] - before[2+a]
				count *= max(min(start+k[a], hi[a])-max(start, lo[a]), 0)
			}
			if count > 0 {
				recip[i*os[3]+j] = 1 / float64(count)
			}
		}
	}
	r := constNode(t.g, n.Output(0)+"/reciprocal count", tensor.New(tensor.WithShape(1, 1, os[2], os[3]), tensor.WithBacking(recip)))
	y, err := broadcast(sum, r, G.HadamardProd, G.BroadcastHadamardProd)
	if err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}

// softmax over one axis (opset ≥ 13 semantics; the last axis for older
// opsets, where it coincides for the 2-D logits the fixtures use).
func softmax(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	axis := int(n.IntAttr("axis", -1))
	if axis < 0 {
		axis += x.Dims()
	}
	if axis != x.Dims()-1 {
		return fmt.Errorf("%w: Softmax over axis %d (only the last)", ErrUnsupported, axis)
	}
	y, err := Softmax(x)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// globalAveragePool is a mean over the spatial axes kept as size-1 axes:
// gorgonia's GlobalAveragePool2D has no derivative.
func globalAveragePool(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if len(s) < 3 {
		return nil, fmt.Errorf("%w: GlobalAveragePool of rank %d", ErrUnsupported, len(s))
	}
	// One reduced axis: gorgonia's Sum over several axes is unreliable.
	keep := []int{s[0], s[1]}
	for range s[2:] {
		keep = append(keep, 1)
	}
	flat, err := G.Reshape(x, []int{s[0], s[1], s.TotalSize() / (s[0] * s[1])})
	if err != nil {
		return nil, err
	}
	m, err := G.Mean(flat, 2)
	if err != nil {
		return nil, err
	}
	return G.Reshape(m, keep)
}

// averagePool is a depthwise GroupConv with a constant filter of
// 1/(kh·kw): gorgonia's AveragePool2D divides by the wrong count (2/3
// of the mean for a 2×2 kernel, measured). Padded zeros count, as
// count_include_pad=1 says.
func averagePool(x *G.Node, kernel tensor.Shape, pad, stride []int) (*G.Node, error) {
	c, taps := x.Shape()[1], kernel[0]*kernel[1]
	w := make([]float64, c*taps)
	for i := range w {
		w[i] = 1 / float64(taps)
	}
	k := G.NewConstant(tensor.New(tensor.WithShape(c, 1, kernel[0], kernel[1]), tensor.WithBacking(w)))
	return GroupConv(x, k, c, pad, stride, []int{1, 1})
}
