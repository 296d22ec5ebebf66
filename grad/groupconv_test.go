package grad

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

// naiveConv is a grouped convolution and its two gradients written
// from the definition, one output position at a time: the reference
// the ops' per-tap loops and matrix products are checked against.
type naiveConv struct {
	g    convGeom
	d    convDims
	x, w []float64
}

// each calls f(xi, wi, yi) for every input, filter and output index
// that one multiply of the convolution joins.
func (c naiveConv) each(f func(xi, wi, yi int)) {
	d, g := c.d, c.g
	for n := range d.n {
		for oc := range d.co {
			first := oc / d.cpg * d.ci
			for ic := range d.ci {
				for ky := range g.kh {
					for kx := range g.kw {
						for oy := range d.oh {
							iy := oy*g.sh - g.ph + ky*g.dh
							for ox := range d.ow {
								ix := ox*g.sw - g.pw + kx*g.dw
								if iy < 0 || iy >= d.h || ix < 0 || ix >= d.w {
									continue
								}
								f(((n*d.c+first+ic)*d.h+iy)*d.w+ix, ((oc*d.ci+ic)*g.kh+ky)*g.kw+kx, ((n*d.co+oc)*d.oh+oy)*d.ow+ox)
							}
						}
					}
				}
			}
		}
	}
}

func randConvCase(r *rand.Rand) (convGeom, tensor.Shape, tensor.Shape) {
	groups := 1 + r.Intn(3)
	ci, cpg := 1+r.Intn(4), 1+r.Intn(5)
	g := convGeom{groups: groups, kh: 1 + r.Intn(3), kw: 1 + r.Intn(4), ph: r.Intn(4), pw: r.Intn(4),
		sh: 1 + r.Intn(3), sw: 1 + r.Intn(3), dh: 1 + r.Intn(2), dw: 1 + r.Intn(3)}
	h, w := 1+r.Intn(7), 1+r.Intn(7)
	for oh, ow := g.out(h, w); oh <= 0 || ow <= 0; oh, ow = g.out(h, w) {
		h, w = h+1, w+1 // a plane the dilated filter fits in
	}
	return g, tensor.Shape{1 + r.Intn(2), groups * ci, h, w}, tensor.Shape{groups * cpg, ci, g.kh, g.kw}
}

// TestGroupConvMatchesDefinition: over random geometries (paddings
// wider than the filter's reach, strides and dilations above one, planes
// smaller than the filter), the forward op and both gradient ops equal
// the convolution's definition, by the per-tap loops and by the matrix
// products alike.
func TestGroupConvMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	paths := map[bool]int{}
	for c := range 600 {
		g, xs, ws := randConvCase(r)
		xv, wv := rnd(r, xs...), rnd(r, ws...)
		d := g.dims(xs, ws)
		paths[gemmWorth(d)]++
		dyv := rnd(r, d.n, d.co, d.oh, d.ow)
		x, w, dy := xv.Data().([]float64), wv.Data().([]float64), dyv.Data().([]float64)
		want := struct{ y, dx, dw []float64 }{make([]float64, len(dy)), make([]float64, len(x)), make([]float64, len(w))}
		naiveConv{g, d, x, w}.each(func(xi, wi, yi int) {
			want.y[yi] += w[wi] * x[xi]
			want.dx[xi] += w[wi] * dy[yi]
			want.dw[wi] += x[xi] * dy[yi]
		})
		y, err := groupConvOp{g}.Do(xv, wv)
		if err != nil {
			t.Fatal(err)
		}
		dx, err := convInputGradOp{g, xs}.Do(wv, dyv)
		if err != nil {
			t.Fatal(err)
		}
		dw, err := convFilterGradOp{g, ws}.Do(xv, dyv)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmp := range []struct {
			name      string
			got, want []float64
		}{{"forward", y.Data().([]float64), want.y}, {"input gradient", dx.Data().([]float64), want.dx}, {"filter gradient", dw.Data().([]float64), want.dw}} {
			for i := range cmp.want {
				if math.Abs(cmp.got[i]-cmp.want[i]) > 1e-9 {
					t.Fatalf("case %d (%s, x %v, w %v): %s[%d] = %g, want %g", c, g, xs, ws, cmp.name, i, cmp.got[i], cmp.want[i])
				}
			}
		}
	}
	if paths[true] < 100 || paths[false] < 100 {
		t.Fatalf("cases by matrix products / per-tap loops: %d / %d, want 100 of each", paths[true], paths[false])
	}
}

// BenchmarkGroupConv times the forward op and both gradient ops on 32
// samples of 14×14: a depthwise 3×3 layer of 96 channels (a MobileNet
// block's) and a plain 3×3 conv of 32 to 32 channels (a ResNet's).
func BenchmarkGroupConv(b *testing.B) {
	b.Run("depthwise", func(b *testing.B) {
		benchConv(b, convGeom{groups: 96, kh: 3, kw: 3, ph: 1, pw: 1, sh: 1, sw: 1, dh: 1, dw: 1}, tensor.Shape{32, 96, 14, 14}, tensor.Shape{96, 1, 3, 3})
	})
	b.Run("dense", func(b *testing.B) {
		benchConv(b, convGeom{groups: 1, kh: 3, kw: 3, ph: 1, pw: 1, sh: 1, sw: 1, dh: 1, dw: 1}, tensor.Shape{32, 32, 14, 14}, tensor.Shape{32, 32, 3, 3})
	})
}

func benchConv(b *testing.B, g convGeom, xs, ws tensor.Shape) {
	r := rand.New(rand.NewSource(1))
	xv, wv := rnd(r, xs...), rnd(r, ws...)
	d := g.dims(xs, ws)
	dyv := rnd(r, d.n, d.co, d.oh, d.ow)
	for b.Loop() {
		groupConvOp{g}.Do(xv, wv)
		convInputGradOp{g, xs}.Do(wv, dyv)
		convFilterGradOp{g, ws}.Do(xv, dyv)
	}
}
