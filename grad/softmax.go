package grad

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Softmax and LogSoftmax over the last axis, each one op with its
// gradient as another. gorgonia's SoftMax and LogSoftMax start a
// goroutine per row, forward and backward; on attention's many short
// rows (a ViT's 17 tokens, a decoder's positions) starting and
// scheduling them took a fifth of a block fit's CPU. These split the
// rows into a few runs for the worker pool instead.

// Softmax is exp(x − max) / Σ exp(x − max) along the last axis.
func Softmax(x *G.Node) (*G.Node, error) { return G.ApplyOp(softmaxOp{}, x) }

// LogSoftmax is x − max − log Σ exp(x − max) along the last axis.
func LogSoftmax(x *G.Node) (*G.Node, error) { return G.ApplyOp(softmaxOp{log: true}, x) }

// softmaxOp takes the softmax (or its log) of each row of the last
// axis. With head or classes set, the first head values of a row pass
// through unchanged and the rest is taken in runs of classes (0: the
// whole rest): a mixed loss's rows of a block output and logits.
type softmaxOp struct {
	log           bool
	head, classes int
}

// runs calls f(lo, hi) for every run [lo, hi) of a row of width values
// that the op normalises.
func (o softmaxOp) runs(width int, f func(lo, hi int)) {
	n := o.classes
	if n <= 0 {
		n = width - o.head
	}
	for c := o.head; c+n <= width; c += n {
		f(c, c+n)
	}
}

func (softmaxOp) Arity() int    { return 1 }
func (softmaxOp) Type() hm.Type { return sameType(1) }

func (softmaxOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("softmax of a scalar")
	}
	return s.Clone(), nil
}

func (o softmaxOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	y := make([]float64, len(x))
	eachRow(len(x), s[len(s)-1], func(lo, hi int) {
		row, out := x[lo:hi], y[lo:hi]
		copy(out[:o.head], row[:o.head])
		o.runs(len(row), func(a, b int) { softmaxRun(row[a:b], out[a:b], o.log) })
	})
	return newDense(s, y), nil
}

// softmaxRun writes the softmax of x (its log with log) into out.
func softmaxRun(x, out []float64, log bool) {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	sum := 0.0
	for i, v := range x {
		out[i] = math.Exp(v - m)
		sum += out[i]
	}
	if log {
		ls := m + math.Log(sum)
		for i, v := range x {
			out[i] = v - ls
		}
		return
	}
	for i := range out {
		out[i] /= sum
	}
}

func (softmaxOp) ReturnsPtr() bool        { return false }
func (softmaxOp) CallsExtern() bool       { return false }
func (softmaxOp) OverwritesInput() int    { return -1 }
func (o softmaxOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o softmaxOp) Hashcode() uint32      { return hashString(o.String()) }
func (o softmaxOp) String() string {
	name := "SoftmaxLast"
	if o.log {
		name = "LogSoftmaxLast"
	}
	if o.head != 0 || o.classes != 0 {
		name += fmt.Sprintf("{%d,%d}", o.head, o.classes)
	}
	return name
}
func (softmaxOp) DiffWRT(int) []bool { return []bool{true} }

// SymDiff reads the op's own output: both gradients are cheapest from it.
func (o softmaxOp) SymDiff(_ G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(softmaxGradOp(o), out, grad)
	return G.Nodes{dx}, err
}

// softmaxGradOp(y, dy) is the gradient of softmaxOp at output y:
// y ⊙ (dy − Σ dy ⊙ y) per row, or for the log-softmax dy − exp(y) Σ dy.
type softmaxGradOp softmaxOp

func (softmaxGradOp) Arity() int    { return 2 }
func (softmaxGradOp) Type() hm.Type { return sameType(2) }

// InferShape is the output's shape, which is the gradient's.
func (o softmaxGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return softmaxOp(o).InferShape(in[0])
}

func (o softmaxGradOp) Do(in ...G.Value) (G.Value, error) {
	y, dy, s, err := sameSize64(in, "softmax gradient")
	if err != nil {
		return nil, err
	}
	dx := make([]float64, len(y))
	eachRow(len(y), s[len(s)-1], func(lo, hi int) {
		yr, gr, out := y[lo:hi], dy[lo:hi], dx[lo:hi]
		copy(out[:o.head], gr[:o.head])
		softmaxOp(o).runs(len(yr), func(a, b int) { softmaxRunGrad(yr[a:b], gr[a:b], out[a:b], o.log) })
	})
	return newDense(s, dx), nil
}

// softmaxRunGrad writes into out the gradient through one run of
// softmaxRun, from its output y and the gradient dy of that output.
func softmaxRunGrad(y, dy, out []float64, log bool) {
	sum := 0.0
	if log {
		for _, g := range dy {
			sum += g
		}
		for i, v := range y {
			out[i] = dy[i] - math.Exp(v)*sum
		}
		return
	}
	for i, v := range y {
		sum += dy[i] * v
	}
	for i, v := range y {
		out[i] = v * (dy[i] - sum)
	}
}

func (softmaxGradOp) ReturnsPtr() bool        { return false }
func (softmaxGradOp) CallsExtern() bool       { return false }
func (softmaxGradOp) OverwritesInput() int    { return -1 }
func (o softmaxGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o softmaxGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o softmaxGradOp) String() string        { return softmaxOp(o).String() + "Grad" }
func (softmaxGradOp) DiffWRT(int) []bool      { return []bool{false, false} }
func (softmaxGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("SoftmaxGrad")
}

// eachRow calls f(lo, hi) for every row [lo, hi) of width values in a
// buffer of total values, in runs of at least 4096 values spread over
// the worker pool.
func eachRow(total, width int, f func(lo, hi int)) {
	rows := total / max(width, 1)
	runs := max(min(rows, total/4096), 1)
	parallel(runs, func(r int) {
		for row := r * rows / runs; row < (r+1)*rows/runs; row++ {
			f(row*width, (row+1)*width)
		}
	})
}
