package grad

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func rnd(r *rand.Rand, shape ...int) *tensor.Dense {
	n := 1
	for _, s := range shape {
		n *= s
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = r.NormFloat64()
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

// TestPrimitiveGradients: each gorgonia op the rules use, and the ones
// grad adds (Erf, invSqrt, globalAveragePool, GroupConv, Pad, Repeat,
// Embed, Softmax, LogSoftmax, Permute),
// has the derivative of its finite differences on random data. (gorgonia's own InverseSqrt and
// GlobalAveragePool2D fail this, so the rules avoid them. gorgonia's
// Conv2d and SoftMax, which the rules no longer use, stay checked: the
// tests of grad's conv and softmax compare against them.)
func TestPrimitiveGradients(t *testing.T) {
	cases := map[string]struct {
		xs, ws []int
		f      func(x, w *G.Node) (*G.Node, error)
	}{
		"conv": {[]int{2, 3, 6, 6}, []int{4, 3, 3, 3}, func(x, w *G.Node) (*G.Node, error) {
			return G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
		}},
		"conv_s2": {[]int{2, 3, 6, 6}, []int{4, 3, 3, 3}, func(x, w *G.Node) (*G.Node, error) {
			return G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{2, 2}, []int{1, 1})
		}},
		"bcmul": {[]int{2, 3, 4, 4}, []int{1, 3, 1, 1}, func(x, w *G.Node) (*G.Node, error) {
			return G.BroadcastHadamardProd(x, w, nil, []byte{0, 2, 3})
		}},
		"bcadd": {[]int{2, 3, 4, 4}, []int{1, 3, 1, 1}, func(x, w *G.Node) (*G.Node, error) {
			return G.BroadcastAdd(x, w, nil, []byte{0, 2, 3})
		}},
		// Through broadcast: a channels-last bias over three leading
		// axes (gorgonia's own BroadcastAdd gets its gradient wrong),
		// both sides broadcast, and rank 5.
		"bcadd_last": {[]int{2, 3, 4, 5}, []int{5}, func(x, w *G.Node) (*G.Node, error) {
			return broadcast(x, w, G.Add, G.BroadcastAdd)
		}},
		"bcmul_both": {[]int{2, 1, 3}, []int{1, 4, 3}, func(x, w *G.Node) (*G.Node, error) {
			return broadcast(x, w, G.HadamardProd, G.BroadcastHadamardProd)
		}},
		"bcadd_rank5": {[]int{2, 3, 2, 4, 4}, []int{1, 3, 1, 4, 4}, func(x, w *G.Node) (*G.Node, error) {
			return broadcast(x, w, G.Add, G.BroadcastAdd)
		}},
		"matmulT": {[]int{2, 5}, []int{3, 5}, func(x, w *G.Node) (*G.Node, error) {
			wt, _ := G.Transpose(w, 1, 0)
			return G.Mul(x, wt)
		}},
		"relu": {[]int{2, 5}, []int{2, 5}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.Rectify(a)
		}},
		"logsoftmax": {[]int{2, 5}, []int{2, 5}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.LogSoftMax(a, 1)
		}},
		"softmax": {[]int{2, 5}, []int{2, 5}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.SoftMax(a, 1)
		}},
		"mean": {[]int{2, 3, 4}, []int{2, 3, 4}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.Mean(a, 2)
		}},
		"sqrtinv": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.Square(w)
			b, _ := G.Add(a, G.NewConstant(1.0))
			c, _ := G.Sqrt(b)
			return G.Inverse(c)
		}},
		"div": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.Square(w)
			b, _ := G.Add(a, G.NewConstant(1.0))
			return G.HadamardDiv(x, b)
		}},
		"invSqrt": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.Square(w)
			b, _ := G.Add(a, G.NewConstant(1.0))
			return invSqrt(b)
		}},
		"erf": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return Erf(a)
		}},
		"groupConvDepthwise": {[]int{2, 4, 6, 6}, []int{4, 1, 3, 3}, func(x, w *G.Node) (*G.Node, error) {
			return GroupConv(x, w, 4, []int{1, 1}, []int{1, 1}, []int{1, 1})
		}},
		"groupConvStrideDilation": {[]int{2, 4, 7, 7}, []int{6, 2, 3, 3}, func(x, w *G.Node) (*G.Node, error) {
			return GroupConv(x, w, 2, []int{1, 2}, []int{2, 1}, []int{1, 2})
		}},
		// The input's gradient: here w is the convolution's input.
		"groupConvInput": {[]int{6, 2, 3, 3}, []int{2, 4, 7, 7}, func(x, w *G.Node) (*G.Node, error) {
			return GroupConv(w, x, 2, []int{1, 2}, []int{2, 1}, []int{1, 2})
		}},
		"pad": {[]int{1}, []int{2, 3, 4}, func(_, w *G.Node) (*G.Node, error) {
			return Pad(w, []int{0, 1, 2}, []int{1, 0, 3}, 0.5)
		}},
		// Concat on a middle axis with w twice (its gradient sums two
		// runs) beside x; TakeRange as Slice and Split use it.
		"concat": {[]int{2, 1, 3}, []int{2, 2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.Square(w)
			return Concat(1, w, x, a)
		}},
		// Relu, and Clip's two bounds (Relu6) with the kinks off the
		// sampled points.
		"clampRelu": {[]int{2, 5}, []int{2, 5}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return relu(a)
		}},
		"clip": {[]int{3, 7}, []int{3, 7}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			b, _ := G.Mul(a, G.NewConstant(4.0))
			return clip(b, -0.5, 0.7)
		}},
		"takeRange": {[]int{1}, []int{2, 5, 3}, func(_, w *G.Node) (*G.Node, error) {
			a, _ := G.Square(w)
			return TakeRange(a, 1, 1, 3)
		}},
		"repeat": {[]int{1}, []int{2, 3, 2, 3}, func(_, w *G.Node) (*G.Node, error) {
			return Repeat(w, []int{1, 2, 2, 3})
		}},
		"softmax4d": {[]int{2, 2, 3, 4}, []int{2, 2, 3, 4}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.SoftMax(a, 3)
		}},
		"permute": {[]int{1}, []int{2, 3, 4, 2}, func(_, w *G.Node) (*G.Node, error) {
			return Permute(w, []int{0, 2, 3, 1})
		}},
		"softmaxLast": {[]int{2, 3, 5}, []int{2, 3, 5}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return Softmax(a)
		}},
		"logSoftmaxLast": {[]int{4, 7}, []int{4, 7}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return LogSoftmax(a)
		}},
		"sin": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.Sin(a)
		}},
		"cos": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.Cos(a)
		}},
		"neg": {[]int{2, 3}, []int{2, 3}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return G.Neg(a)
		}},
		// Token 1 twice: its row collects both gradients.
		"embed": {[]int{1}, []int{6, 3}, func(_, w *G.Node) (*G.Node, error) {
			ids := G.NewTensor(w.Graph(), G.Float64, 2, G.WithShape(5, 1), G.WithName("ids"),
				G.WithValue(tensor.New(tensor.WithShape(5, 1), tensor.WithBacking([]float64{1, 4, 1, 0, 5}))))
			return Embed(w, ids)
		}},
		"repeat5": {[]int{1}, []int{2, 2, 1, 3, 2}, func(_, w *G.Node) (*G.Node, error) {
			return Repeat(w, []int{1, 1, 2, 1, 1})
		}},
		"globalAveragePool": {[]int{2, 3, 4, 4}, []int{2, 3, 4, 4}, func(x, w *G.Node) (*G.Node, error) {
			a, _ := G.HadamardProd(x, w)
			return globalAveragePool(a)
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewSource(1))
			g := G.NewGraph()
			x := G.NewTensor(g, G.Float64, len(c.xs), G.WithShape(c.xs...), G.WithValue(rnd(r, c.xs...)), G.WithName("x"))
			w := G.NewTensor(g, G.Float64, len(c.ws), G.WithShape(c.ws...), G.WithValue(rnd(r, c.ws...)), G.WithName("w"))
			y, err := c.f(x, w)
			if err != nil {
				t.Fatal(err)
			}
			rr := G.NewTensor(g, G.Float64, y.Dims(), G.WithShape(y.Shape()...), G.WithValue(rnd(r, y.Shape()...)), G.WithName("r"))
			p, _ := G.HadamardProd(y, rr)
			cost, _ := G.Sum(p)
			gs, err := G.Grad(cost, w)
			if err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(g)
			run := func() float64 {
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				return cost.Value().Data().(float64)
			}
			run()
			gd := append([]float64(nil), gs[0].Value().Data().([]float64)...)
			wd := w.Value().Data().([]float64)
			bad := 0
			for i := range wd {
				k := wd[i]
				wd[i] = k + 1e-6
				u := run()
				wd[i] = k - 1e-6
				d := run()
				wd[i] = k
				fd := (u - d) / 2e-6
				if math.Abs(fd-gd[i]) > 1e-4*(1+math.Abs(fd)) {
					bad++
					if bad < 3 {
						t.Errorf("[%d] grad %g fd %g", i, gd[i], fd)
					}
				}
			}
		})
	}
}

// TestGroupConvMatchesConv2d: GroupConv computes what gorgonia's Conv2d
// computes on each group's slice of channels and filters (one group:
// the whole tensors), with padding, strides and dilations.
func TestGroupConvMatchesConv2d(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, c := range []struct {
		groups           int
		xs, ws           []int
		pad, stride, dil []int
	}{
		{1, []int{2, 3, 7, 6}, []int{5, 3, 3, 2}, []int{1, 0}, []int{2, 1}, []int{1, 2}},
		{3, []int{2, 6, 6, 6}, []int{9, 2, 3, 3}, []int{1, 1}, []int{1, 2}, []int{1, 1}},
		{4, []int{1, 4, 5, 5}, []int{4, 1, 3, 3}, []int{2, 2}, []int{1, 1}, []int{2, 2}},
	} {
		xv, wv := rnd(r, c.xs...), rnd(r, c.ws...)
		g := G.NewGraph()
		// Named nodes: gorgonia merges unnamed inputs of one shape.
		x := G.NewTensor(g, G.Float64, 4, G.WithShape(c.xs...), G.WithValue(xv), G.WithName("x"))
		w := G.NewTensor(g, G.Float64, 4, G.WithShape(c.ws...), G.WithValue(wv), G.WithName("w"))
		got, err := GroupConv(x, w, c.groups, c.pad, c.stride, c.dil)
		if err != nil {
			t.Fatal(err)
		}
		ci, co := c.xs[1]/c.groups, c.ws[0]/c.groups
		var parts []*G.Node
		for gr := range c.groups {
			xg := G.NewTensor(g, G.Float64, 4, G.WithShape(c.xs[0], ci, c.xs[2], c.xs[3]),
				G.WithValue(sliceAxis(xv, 1, gr*ci, (gr+1)*ci)), G.WithName(fmt.Sprint("x", gr)))
			wg := G.NewTensor(g, G.Float64, 4, G.WithShape(co, c.ws[1], c.ws[2], c.ws[3]),
				G.WithValue(sliceAxis(wv, 0, gr*co, (gr+1)*co)), G.WithName(fmt.Sprint("w", gr)))
			p, err := G.Conv2d(xg, wg, tensor.Shape{c.ws[2], c.ws[3]}, c.pad, c.stride, c.dil)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p)
		}
		want := parts[0]
		if len(parts) > 1 {
			if want, err = G.Concat(1, parts...); err != nil {
				t.Fatal(err)
			}
		}
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		a, b := got.Value().Data().([]float64), want.Value().Data().([]float64)
		if !slices.Equal(got.Shape(), want.Shape()) {
			t.Fatalf("groups %d: shape %v, Conv2d %v", c.groups, got.Shape(), want.Shape())
		}
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-9 {
				t.Fatalf("groups %d: [%d] = %g, Conv2d %g", c.groups, i, a[i], b[i])
			}
		}
	}
}

// sliceAxis copies entries [lo, hi) of axis a of d.
func sliceAxis(d *tensor.Dense, a, lo, hi int) *tensor.Dense {
	v, err := d.Slice(sliceOn(d.Dims(), a, lo, hi)...)
	if err != nil {
		panic(err)
	}
	out := v.(tensor.View).Materialize().(*tensor.Dense)
	// A slice of one element drops its axis: put it back.
	shape := d.Shape().Clone()
	shape[a] = hi - lo
	if err := out.Reshape(shape...); err != nil {
		panic(err)
	}
	return out
}

func sliceOn(rank, a, lo, hi int) []tensor.Slice {
	s := make([]tensor.Slice, rank)
	s[a] = G.S(lo, hi)
	return s
}
