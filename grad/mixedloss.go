package grad

import (
	"fmt"
	"math"

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
	y, err := G.ApplyOp(softmaxOp{log: true, head: mx.Head, classes: mx.Classes}, out)
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
	for r := range batch {
		o, t := out[r*width:(r+1)*width], ref[r*width:(r+1)*width]
		for c := range mx.Head {
			d := o[c] - float64(t[c])
			se += d * d
		}
		kl += MeanKL(t[mx.Head:], o[mx.Head:], mx.Classes)
	}
	// Every row holds the same number of logit rows: the mean of the
	// rows' means is the mean over all.
	return (1-mx.Weight)*se/float64(batch*max(mx.Head, 1)) + mx.Weight*kl/float64(batch)
}

// MeanKL is the mean over rows of cols logits of KL(softmax(ref) ‖
// softmax(out)): the distillation loss of a held-out batch.
func MeanKL(ref []float32, out []float64, cols int) float64 {
	rows := len(out) / cols
	p, q, r := make([]float64, cols), make([]float64, cols), make([]float64, cols)
	kl := 0.0
	for row := range rows {
		for i, v := range ref[row*cols : (row+1)*cols] {
			r[i] = float64(v)
		}
		softmaxRun(r, p, true)
		softmaxRun(out[row*cols:(row+1)*cols], q, true)
		for i := range p {
			kl += math.Exp(p[i]) * (p[i] - q[i])
		}
	}
	return kl / float64(rows)
}
