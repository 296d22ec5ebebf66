package grad

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Mixed is a loss over outputs whose rows join two parts: the first
// Head values of each row are matched by their mean squared error, the
// rest, read as logits in rows of Classes, by the KL divergence from the
// target's softmax. The loss is (1 − Weight) × the MSE + Weight × the
// KL averaged over logit rows. A block fit matches a block's own output
// and the model's logits at once with it.
type Mixed struct {
	Head, Classes int
	Weight        float64
}

// NewMixedObjective adds the mixed loss mx and its gradients to the
// net, whose output must be [batch, Head + k·Classes].
func NewMixedObjective(n *Net, mx Mixed) (*Objective, error) {
	out := n.Output
	s := out.Shape()
	if len(s) != 2 || mx.Head < 0 || mx.Classes <= 0 || (s[1]-mx.Head) <= 0 || (s[1]-mx.Head)%mx.Classes != 0 {
		return nil, fmt.Errorf("grad: mixed loss of %d values and rows of %d logits on an output %v", mx.Head, mx.Classes, s)
	}
	if mx.Weight <= 0 || mx.Weight >= 1 {
		return nil, fmt.Errorf("grad: mixed loss weight %g not in (0, 1)", mx.Weight)
	}
	if n.objective {
		return nil, fmt.Errorf("grad: the net already has an objective (build another net)")
	}
	n.objective = true
	o := &Objective{Net: n, loss: MSE, mixed: &mx, grads: map[*G.Node]*G.Node{}}
	o.target = G.NewTensor(n.Graph, G.Float64, 2, G.WithShape(s.Clone()...), G.WithName("target"))
	batch, width := s[0], s[1]
	head := make([]float64, batch*width)
	tail := make([]float64, batch*width)
	for r := range batch {
		for c := range width {
			if c < mx.Head {
				head[r*width+c] = 1
			} else {
				tail[r*width+c] = 1
			}
		}
	}
	constant := func(v []float64, name string) *G.Node {
		return G.NewConstant(tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(v)), G.WithName(name))
	}
	y, err := G.ApplyOp(tailLogSoftmaxOp{head: mx.Head, classes: mx.Classes}, out)
	if err != nil {
		return nil, err
	}
	// The MSE over the head values: Σ head ⊙ (y − t)² / (batch · Head).
	d, err := G.Sub(y, o.target)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(d)
	if err != nil {
		return nil, err
	}
	if sq, err = G.HadamardProd(sq, constant(head, "mixed.head")); err != nil {
		return nil, err
	}
	mse, err := G.Sum(sq)
	if err != nil {
		return nil, err
	}
	if mse, err = G.Mul(mse, G.NewConstant((1-mx.Weight)/float64(batch*max(mx.Head, 1)))); err != nil {
		return nil, err
	}
	// The cross-entropy over the logit rows: −Σ tail ⊙ t ⊙ log q / rows
	// (the target's entropy, a constant, is added back by the step).
	p, err := G.HadamardProd(y, o.target)
	if err != nil {
		return nil, err
	}
	if p, err = G.HadamardProd(p, constant(tail, "mixed.tail")); err != nil {
		return nil, err
	}
	ce, err := G.Sum(p)
	if err != nil {
		return nil, err
	}
	rows := batch * (width - mx.Head) / mx.Classes
	if ce, err = G.Mul(ce, G.NewConstant(-mx.Weight/float64(rows))); err != nil {
		return nil, err
	}
	if o.cost, err = G.Add(mse, ce); err != nil {
		return nil, err
	}
	if err := o.differentiate(); err != nil {
		return nil, err
	}
	return o, nil
}

// target fills tgt from ref for the mixed loss: head values as they
// are, logit rows as their softmax. It returns Weight × the mean entropy
// of those rows, which the cross-entropy exceeds the KL by.
func (mx *Mixed) target(ref []float32, tgt []float64, batch int) float64 {
	width := len(ref) / batch
	entropy, rows := 0.0, 0
	for r := range batch {
		row := ref[r*width : (r+1)*width]
		out := tgt[r*width : (r+1)*width]
		for c := range mx.Head {
			out[c] = float64(row[c])
		}
		for lo := mx.Head; lo < width; lo += mx.Classes {
			softmaxRow(row[lo:lo+mx.Classes], out[lo:lo+mx.Classes])
			for _, q := range out[lo : lo+mx.Classes] {
				if q > 0 {
					entropy -= q * math.Log(q)
				}
			}
			rows++
		}
	}
	return mx.Weight * entropy / float64(max(rows, 1))
}

// Distance is the mixed loss of outputs out against ref (a held-out
// score on the objective's own scale).
func (mx *Mixed) Distance(out []float64, ref []float32, batch int) float64 {
	width := len(ref) / batch
	var se, kl float64
	rows := 0
	for r := range batch {
		o, t := out[r*width:(r+1)*width], ref[r*width:(r+1)*width]
		for c := range mx.Head {
			d := o[c] - float64(t[c])
			se += d * d
		}
		for lo := mx.Head; lo < width; lo += mx.Classes {
			kl += klRow(t[lo:lo+mx.Classes], o[lo:lo+mx.Classes])
			rows++
		}
	}
	return (1-mx.Weight)*se/float64(batch*max(mx.Head, 1)) + mx.Weight*kl/float64(max(rows, 1))
}

// klRow is KL(softmax(ref) ‖ softmax(out)) of one row of logits.
func klRow(ref []float32, out []float64) float64 {
	lp := make([]float64, len(ref))
	lq := make([]float64, len(out))
	logSoftmaxInto(func(i int) float64 { return float64(ref[i]) }, lp)
	logSoftmaxInto(func(i int) float64 { return out[i] }, lq)
	kl := 0.0
	for i := range lp {
		kl += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return kl
}

func logSoftmaxInto(at func(int) float64, out []float64) {
	m := math.Inf(-1)
	for i := range out {
		m = max(m, at(i))
	}
	s := 0.0
	for i := range out {
		s += math.Exp(at(i) - m)
	}
	ls := m + math.Log(s)
	for i := range out {
		out[i] = at(i) - ls
	}
}

// tailLogSoftmaxOp passes the first head values of each row through and
// takes the log-softmax of the rest in runs of classes.
type tailLogSoftmaxOp struct{ head, classes int }

func (tailLogSoftmaxOp) Arity() int    { return 1 }
func (tailLogSoftmaxOp) Type() hm.Type { return sameType(1) }

func (tailLogSoftmaxOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

func (o tailLogSoftmaxOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	y := make([]float64, len(x))
	eachRow(len(x), s[len(s)-1], func(lo, hi int) {
		row, out := x[lo:hi], y[lo:hi]
		copy(out[:o.head], row[:o.head])
		for c := o.head; c < len(row); c += o.classes {
			logSoftmaxInto(func(i int) float64 { return row[c+i] }, out[c:c+o.classes])
		}
	})
	return newDense(s, y), nil
}

func (tailLogSoftmaxOp) ReturnsPtr() bool        { return false }
func (tailLogSoftmaxOp) CallsExtern() bool       { return false }
func (tailLogSoftmaxOp) OverwritesInput() int    { return -1 }
func (o tailLogSoftmaxOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o tailLogSoftmaxOp) Hashcode() uint32      { return hashString(o.String()) }
func (o tailLogSoftmaxOp) String() string {
	return fmt.Sprintf("TailLogSoftmax{%d,%d}", o.head, o.classes)
}
func (tailLogSoftmaxOp) DiffWRT(int) []bool { return []bool{true} }

func (o tailLogSoftmaxOp) SymDiff(_ G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(tailLogSoftmaxGradOp(o), out, grad)
	return G.Nodes{dx}, err
}

// tailLogSoftmaxGradOp(y, dy): dy on the head values, dy − exp(y) Σ dy
// on each run of logits.
type tailLogSoftmaxGradOp tailLogSoftmaxOp

func (tailLogSoftmaxGradOp) Arity() int    { return 2 }
func (tailLogSoftmaxGradOp) Type() hm.Type { return sameType(2) }

func (o tailLogSoftmaxGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tailLogSoftmaxOp(o).InferShape(in[0])
}

func (o tailLogSoftmaxGradOp) Do(in ...G.Value) (G.Value, error) {
	y, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	dy, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	if len(dy) != len(y) {
		return nil, fmt.Errorf("tail log-softmax gradient: %d output values and %d gradients", len(y), len(dy))
	}
	dx := make([]float64, len(y))
	eachRow(len(y), s[len(s)-1], func(lo, hi int) {
		yr, gr, out := y[lo:hi], dy[lo:hi], dx[lo:hi]
		copy(out[:o.head], gr[:o.head])
		for c := o.head; c < len(yr); c += o.classes {
			sum := 0.0
			for _, g := range gr[c : c+o.classes] {
				sum += g
			}
			for i := c; i < c+o.classes; i++ {
				out[i] = gr[i] - math.Exp(yr[i])*sum
			}
		}
	})
	return newDense(s, dx), nil
}

func (tailLogSoftmaxGradOp) ReturnsPtr() bool        { return false }
func (tailLogSoftmaxGradOp) CallsExtern() bool       { return false }
func (tailLogSoftmaxGradOp) OverwritesInput() int    { return -1 }
func (o tailLogSoftmaxGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o tailLogSoftmaxGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o tailLogSoftmaxGradOp) String() string        { return tailLogSoftmaxOp(o).String() + "Grad" }
func (tailLogSoftmaxGradOp) DiffWRT(int) []bool      { return []bool{false, false} }
func (tailLogSoftmaxGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("TailLogSoftmaxGrad")
}
