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
	rules["AveragePool"] = pool(averagePool)
	rules["Softmax"] = softmax
}

func pool(f func(x *G.Node, kernel tensor.Shape, pad, stride []int) (*G.Node, error)) rule {
	return func(t *translator, n *graph.Node) error {
		x, err := t.in(n, 0)
		if err != nil {
			return err
		}
		k := ints(n.IntsAttr("kernel_shape", nil))
		pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
		if x.Dims() != 4 || len(k) != 2 || len(pads) != 4 || pads[0] != pads[2] || pads[1] != pads[3] {
			return fmt.Errorf("%w: only 2-D pools with symmetric pads", ErrUnsupported)
		}
		if n.IntAttr("ceil_mode", 0) != 0 || n.StringAttr("auto_pad", "NOTSET") != "NOTSET" {
			return fmt.Errorf("%w: ceil_mode or auto_pad", ErrUnsupported)
		}
		if n.Op() == "AveragePool" && (pads[0] != 0 || pads[1] != 0) && n.IntAttr("count_include_pad", 0) == 0 {
			return fmt.Errorf("%w: padded AveragePool without count_include_pad", ErrUnsupported)
		}
		stride := ints(n.IntsAttr("strides", []int64{1, 1}))
		y, err := f(x, tensor.Shape(k), []int{int(pads[0]), int(pads[1])}, stride)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
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
	k := ints(n.IntsAttr("kernel_shape", nil))
	if x.Dims() != 4 || len(k) != 2 {
		return fmt.Errorf("%w: only 2-D pools", ErrUnsupported)
	}
	if len(n.Proto.Output) > 1 && n.Output(1) != "" {
		return fmt.Errorf("%w: MaxPool with its Indices output", ErrUnsupported)
	}
	for _, d := range n.IntsAttr("dilations", nil) {
		if d != 1 {
			return fmt.Errorf("%w: dilated MaxPool", ErrUnsupported)
		}
	}
	stride := ints(n.IntsAttr("strides", []int64{1, 1}))
	pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
	autoPad := n.StringAttr("auto_pad", "NOTSET")
	plain := n.IntAttr("ceil_mode", 0) == 0 && autoPad == "NOTSET" && len(pads) == 4 && pads[0] == pads[2] && pads[1] == pads[3]
	if plain {
		y, err := G.MaxPool2D(x, tensor.Shape(k), []int{int(pads[0]), int(pads[1])}, stride)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
	out, ok := t.shapes.Of(n.Output(0))
	dims, known := out.Ints()
	if !ok || !known || len(dims) != 4 || len(pads) != 4 {
		return fmt.Errorf("%w: MaxPool output %s shape not static", ErrUnsupported, n.Output(0))
	}
	in := x.Shape()
	before, after := []int{0, 0, 0, 0}, []int{0, 0, 0, 0}
	for a := range 2 {
		// The input the windows cover: (out−1)·stride + kernel.
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
			return fmt.Errorf("%w: MaxPool auto_pad %s", ErrUnsupported, autoPad)
		}
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
