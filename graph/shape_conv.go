package graph

import (
	"github.com/pare-dev/pare/onnx"
)

// window holds the sliding-window attributes shared by Conv,
// ConvTranspose and the pools.
type window struct {
	kernel, strides, dilations, pads []int64
	autoPad                          string
	ceil                             bool
}

func readWindow(c *nodeCtx, kernel []int64) (window, error) {
	k := len(kernel)
	w := window{
		kernel:    kernel,
		strides:   c.n.IntsAttr("strides", nil),
		dilations: c.n.IntsAttr("dilations", nil),
		pads:      c.n.IntsAttr("pads", nil),
		autoPad:   c.n.StringAttr("auto_pad", "NOTSET"),
		ceil:      c.n.IntAttr("ceil_mode", 0) == 1,
	}
	fill := func(v []int64, n int, def int64, name string) ([]int64, error) {
		if len(v) == 0 {
			v = make([]int64, n)
			for i := range v {
				v[i] = def
			}
		}
		if len(v) != n {
			return nil, mismatch("%s has %d values for %d spatial axes", name, len(v), k)
		}
		return v, nil
	}
	var err error
	if w.strides, err = fill(w.strides, k, 1, "strides"); err != nil {
		return w, err
	}
	if w.dilations, err = fill(w.dilations, k, 1, "dilations"); err != nil {
		return w, err
	}
	if w.pads, err = fill(w.pads, 2*k, 0, "pads"); err != nil {
		return w, err
	}
	for i := range k {
		if w.strides[i] <= 0 || w.dilations[i] <= 0 || kernel[i] <= 0 {
			return w, mismatch("non-positive kernel, stride or dilation")
		}
	}
	return w, nil
}

// outDims computes the output size of each spatial axis of a
// convolution or pooling window.
func (w window) outDims(in []Dim) ([]Dim, error) {
	out := make([]Dim, len(in))
	for i, d := range in {
		dk := (w.kernel[i]-1)*w.dilations[i] + 1
		s := w.strides[i]
		same := w.autoPad == "SAME_UPPER" || w.autoPad == "SAME_LOWER"
		pb, pe := w.pads[i], w.pads[i+len(in)]
		if w.autoPad == "VALID" || same {
			pb, pe = 0, 0
		}
		x, ok := d.Value()
		if !ok {
			if d.IsSymbolic() && s == 1 && (same || dk == 1+pb+pe) {
				out[i] = d
			}
			continue
		}
		if same {
			out[i] = DimOf((x + s - 1) / s)
			continue
		}
		eff := x + pb + pe - dk
		if eff < 0 {
			return nil, mismatch("window %d larger than padded input %d", dk, x+pb+pe)
		}
		n := eff/s + 1
		if w.ceil {
			n = (eff+s-1)/s + 1
			if (n-1)*s >= x+pb { // the last window would start in the end padding
				n--
			}
		}
		out[i] = DimOf(n)
	}
	return out, nil
}

// convolve shapes a convolution: x [N, C, spatial...], weight [M, C/g,
// k...].
func convolve(c *nodeCtx, xi, wi int, elem DataType) error {
	x, w := c.in(xi), c.in(wi)
	if !x.Ranked && w.Ranked {
		x = TensorShape{Elem: x.Elem, Dims: make([]Dim, len(w.Dims)), Ranked: true}
	}
	if !x.Ranked {
		c.out(0, TensorShape{Elem: elem})
		return nil
	}
	if len(x.Dims) < 3 {
		return mismatch("input rank %d, want at least 3", len(x.Dims))
	}
	k := len(x.Dims) - 2
	kernel := c.n.IntsAttr("kernel_shape", nil)
	m := Dim{}
	if w.Ranked {
		if len(w.Dims) != k+2 {
			return mismatch("weight rank %d for input rank %d", len(w.Dims), len(x.Dims))
		}
		m = w.Dims[0]
		group := DimOf(c.n.IntAttr("group", 1))
		if cin := mulDim(w.Dims[1], group); cin.IsKnown() && x.Dims[1].IsKnown() && cin != x.Dims[1] {
			return mismatch("input has %v channels, weight expects %v", x.Dims[1], cin)
		}
		if kernel == nil {
			if ks, ok := (TensorShape{Dims: w.Dims[2:], Ranked: true}).Ints(); ok {
				kernel = ks
			}
		}
	}
	out := TensorShape{Elem: elem, Ranked: true, Dims: make([]Dim, k+2)}
	out.Dims[0], out.Dims[1] = x.Dims[0], m
	if len(kernel) == k {
		win, err := readWindow(c, kernel)
		if err != nil {
			return err
		}
		sp, err := win.outDims(x.Dims[2:])
		if err != nil {
			return err
		}
		copy(out.Dims[2:], sp)
	}
	c.out(0, out)
	return nil
}

func inferConv(c *nodeCtx) error {
	elem := c.in(0).Elem
	if c.n.Op() == "ConvInteger" {
		elem = onnx.TensorProto_INT32
	}
	return convolve(c, 0, 1, elem)
}

// inferQLinearConv: inputs x, x_scale, x_zero_point, w, w_scale,
// w_zero_point, y_scale, y_zero_point, B.
func inferQLinearConv(c *nodeCtx) error {
	elem := c.in(7).Elem
	if elem == onnx.TensorProto_UNDEFINED {
		elem = c.in(0).Elem
	}
	return convolve(c, 0, 3, elem)
}

// inferConvTranspose: weight [C, M/g, k...]; output size
// s·(in−1) + output_padding + dk − pads, or output_shape when given.
func inferConvTranspose(c *nodeCtx) error {
	x, w := c.in(0), c.in(1)
	if !x.Ranked {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	if len(x.Dims) < 3 {
		return mismatch("input rank %d, want at least 3", len(x.Dims))
	}
	k := len(x.Dims) - 2
	out := TensorShape{Elem: x.Elem, Ranked: true, Dims: make([]Dim, k+2)}
	out.Dims[0] = x.Dims[0]
	kernel := c.n.IntsAttr("kernel_shape", nil)
	if w.Ranked {
		if len(w.Dims) != k+2 {
			return mismatch("weight rank %d for input rank %d", len(w.Dims), len(x.Dims))
		}
		out.Dims[1] = mulDim(w.Dims[1], DimOf(c.n.IntAttr("group", 1)))
		if kernel == nil {
			if ks, ok := (TensorShape{Dims: w.Dims[2:], Ranked: true}).Ints(); ok {
				kernel = ks
			}
		}
	}
	if shape := c.n.IntsAttr("output_shape", nil); len(shape) == k || len(shape) == k+2 {
		for i, d := range shape[len(shape)-k:] {
			out.Dims[2+i] = DimOf(d)
		}
		c.out(0, out)
		return nil
	}
	if len(kernel) != k {
		c.out(0, out)
		return nil
	}
	win, err := readWindow(c, kernel)
	if err != nil {
		return err
	}
	outPad := c.n.IntsAttr("output_padding", make([]int64, k))
	if len(outPad) != k {
		return mismatch("output_padding has %d values for %d spatial axes", len(outPad), k)
	}
	for i, d := range x.Dims[2:] {
		v, ok := d.Value()
		if !ok {
			continue
		}
		s := win.strides[i]
		if win.autoPad == "SAME_UPPER" || win.autoPad == "SAME_LOWER" {
			out.Dims[2+i] = DimOf(v * s)
			continue
		}
		pads := win.pads[i] + win.pads[i+k]
		if win.autoPad == "VALID" {
			pads = 0
		}
		dk := (kernel[i]-1)*win.dilations[i] + 1
		n := s*(v-1) + outPad[i] + dk - pads
		if n <= 0 {
			return mismatch("non-positive output size %d", n)
		}
		out.Dims[2+i] = DimOf(n)
	}
	c.out(0, out)
	return nil
}

func inferPool(c *nodeCtx) error {
	x := c.in(0)
	kernel := c.n.IntsAttr("kernel_shape", nil)
	if !x.Ranked || len(kernel) == 0 {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	if len(x.Dims) != len(kernel)+2 {
		return mismatch("input rank %d for %d-D kernel", len(x.Dims), len(kernel))
	}
	win, err := readWindow(c, kernel)
	if err != nil {
		return err
	}
	sp, err := win.outDims(x.Dims[2:])
	if err != nil {
		return err
	}
	out := ShapeOf(x.Elem, append([]Dim{x.Dims[0], x.Dims[1]}, sp...)...)
	c.out(0, out)
	out.Elem = onnx.TensorProto_INT64
	c.out(1, out) // MaxPool's Indices
	return nil
}

func inferGlobalPool(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	if len(x.Dims) < 2 {
		return mismatch("input rank %d, want at least 2", len(x.Dims))
	}
	dims := []Dim{x.Dims[0], x.Dims[1]}
	for range x.Dims[2:] {
		dims = append(dims, DimOf(1))
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}
