package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["GlobalAveragePool"] = unary(globalAveragePool)
	rules["MaxPool"] = pool(G.MaxPool2D)
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
