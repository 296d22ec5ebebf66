package grad

import (
	"math"
	"math/rand"
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
// grad adds (Erf, invSqrt, globalAveragePool), has the derivative of
// its finite differences on random data. (gorgonia's own InverseSqrt and
// GlobalAveragePool2D fail this, so the rules avoid them.)
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
