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

type softmaxOp struct{ log bool }

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
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, v)
		}
		sum := 0.0
		for i, v := range row {
			out[i] = math.Exp(v - m)
			sum += out[i]
		}
		if o.log {
			ls := m + math.Log(sum)
			for i, v := range row {
				out[i] = v - ls
			}
			return
		}
		for i := range out {
			out[i] /= sum
		}
	})
	return newDense(s, y), nil
}

func (softmaxOp) ReturnsPtr() bool        { return false }
func (softmaxOp) CallsExtern() bool       { return false }
func (softmaxOp) OverwritesInput() int    { return -1 }
func (o softmaxOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o softmaxOp) Hashcode() uint32      { return hashString(o.String()) }
func (o softmaxOp) String() string {
	if o.log {
		return "LogSoftmaxLast"
	}
	return "SoftmaxLast"
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
	y, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	dy, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	if len(dy) != len(y) {
		return nil, fmt.Errorf("softmax gradient: %d output values and %d gradients", len(y), len(dy))
	}
	dx := make([]float64, len(y))
	eachRow(len(y), s[len(s)-1], func(lo, hi int) {
		yr, gr, out := y[lo:hi], dy[lo:hi], dx[lo:hi]
		sum := 0.0
		if o.log {
			for _, g := range gr {
				sum += g
			}
			for i, v := range yr {
				out[i] = gr[i] - math.Exp(v)*sum
			}
			return
		}
		for i, v := range yr {
			sum += gr[i] * v
		}
		for i, v := range yr {
			out[i] = v * (gr[i] - sum)
		}
	})
	return newDense(s, dx), nil
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
