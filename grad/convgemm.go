package grad

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Convolutions whose groups hold several input and output channels (a
// plain conv is one group) run as matrix products per sample and group:
// the group's input unrolled into a [ci·taps, P] matrix (im2col, P the
// output positions), multiplied by the group's filters [cpg, ci·taps].
// The product lands in [N, C, H, W] order, so unlike gorgonia's Conv2d
// (which multiplies in [N, H, W, C] order and transposes) no pass moves
// the data again; the gradients are the same products transposed in
// place by the BLAS flags. Depthwise groups keep the per-tap loops: a
// product of one filter row by one column matrix gains nothing.

// gemmWorth reports whether a convolution of these dims runs as matrix
// products.
func gemmWorth(d convDims) bool { return d.ci*d.cpg >= 8 }

var blasImpl gonum.Implementation

// groupIn and groupOut are the offsets of sample n's group gr in the
// input and the output: ci planes of h×w, cpg planes of oh×ow.
func (d convDims) groupIn(n, gr int) int  { return (n*d.c + gr*d.ci) * d.h * d.w }
func (d convDims) groupOut(n, gr int) int { return (n*d.co + gr*d.cpg) * d.oh * d.ow }

// im2col writes into cols [ci·taps, P] the group's input planes xg
// (ci planes of h×w) as each tap reads them, zero where a tap reads
// padding. cols must be zero on entry.
func im2col(spans []tapSpan, d convDims, xg, cols []float64) {
	p := d.oh * d.ow
	for ic := range d.ci {
		xp := xg[ic*d.h*d.w:][:d.h*d.w]
		for t, s := range spans {
			s.axpy(1, xp, cols[(ic*len(spans)+t)*p:][:p], d.ow)
		}
	}
}

// col2im adds the rows of cols [ci·taps, P] back into the group's input
// planes dxg at the positions each tap read: im2col's adjoint.
func col2im(spans []tapSpan, d convDims, cols, dxg []float64) {
	p := d.oh * d.ow
	for ic := range d.ci {
		dxp := dxg[ic*d.h*d.w:][:d.h*d.w]
		for t, s := range spans {
			s.scatter(1, cols[(ic*len(spans)+t)*p:][:p], dxp, d.ow)
		}
	}
}

// convGemm is the forward product: y [n, co, oh, ow] from x and w.
func convGemm(g convGeom, d convDims, spans []tapSpan, x, w, y []float64) {
	p, k := d.oh*d.ow, d.ci*len(spans)
	parallelScratch(d.n*g.groups, k*p, func(cols []float64, i int) {
		n, gr := i/g.groups, i%g.groups
		clear(cols)
		im2col(spans, d, x[d.groupIn(n, gr):], cols)
		blasImpl.Dgemm(blas.NoTrans, blas.NoTrans, d.cpg, p, k, 1, w[gr*d.cpg*k:], k, cols, p, 0, y[d.groupOut(n, gr):], p)
	})
}

// convGemmInputGrad is the gradient with respect to the input: per
// sample and group, wᵀ·dy unrolled back by col2im.
func convGemmInputGrad(g convGeom, d convDims, spans []tapSpan, w, dy, dx []float64) {
	p, k := d.oh*d.ow, d.ci*len(spans)
	parallelScratch(d.n*g.groups, k*p, func(cols []float64, i int) {
		n, gr := i/g.groups, i%g.groups
		blasImpl.Dgemm(blas.Trans, blas.NoTrans, k, p, d.cpg, 1, w[gr*d.cpg*k:], k, dy[d.groupOut(n, gr):], p, 0, cols, p)
		col2im(spans, d, cols, dx[d.groupIn(n, gr):])
	})
}

// convGemmFilterGrad is the gradient with respect to the filters: per
// group, the sum over samples of dy·colsᵀ. Each worker sums into its
// own copy, added up at the end.
func convGemmFilterGrad(g convGeom, d convDims, spans []tapSpan, x, dy, dw []float64) {
	p, k := d.oh*d.ow, d.ci*len(spans)
	accs := parallelScratch(d.n*g.groups, k*p+len(dw), func(buf []float64, i int) {
		n, gr := i/g.groups, i%g.groups
		cols, acc := buf[:k*p], buf[k*p:]
		clear(cols)
		im2col(spans, d, x[d.groupIn(n, gr):], cols)
		blasImpl.Dgemm(blas.NoTrans, blas.Trans, d.cpg, k, p, 1, dy[d.groupOut(n, gr):], p, cols, p, 1, acc[gr*d.cpg*k:], k)
	})
	for _, buf := range accs {
		for j, v := range buf[k*p:] {
			dw[j] += v
		}
	}
}
