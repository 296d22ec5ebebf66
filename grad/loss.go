package grad

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	ptensor "github.com/pare-dev/pare/tensor"
)

// Loss names a distillation loss toward reference outputs.
type Loss int

const (
	// KL is the Kullback–Leibler divergence from the reference's
	// softmax to the net's, averaged over rows (for logits; the rows of
	// a decoder's [batch, seq, vocab] logits are its positions).
	KL Loss = iota
	// MSE is the mean squared difference to the reference outputs.
	MSE
	// PseudoLabel is the cross-entropy against the reference's top-1
	// class (KL toward a one-hot target): unlike KL and MSE it has a
	// non-zero gradient at the reference model itself, which first-order
	// importance needs.
	PseudoLabel
)

func (l Loss) String() string {
	switch l {
	case MSE:
		return "mse"
	case PseudoLabel:
		return "pseudo-label"
	}
	return "kl"
}

// Objective is a net with a loss toward reference outputs and the
// gradient of that loss with respect to every weight.
type Objective struct {
	Net    *Net
	loss   Loss
	mixed  *Mixed // the loss is a Mixed one (NewMixedObjective)
	target *G.Node
	cost   *G.Node
	grads  map[*G.Node]*G.Node // weight → its gradient node
	vm     G.VM
	// acc holds the gradients of a batch run in several chunks (their
	// mean), nil after a batch of one chunk.
	acc map[*G.Node][]float64
}

// NewObjective adds the loss and its gradients to the net's graph. The
// net's Forward still runs the forward pass alone.
func NewObjective(n *Net, loss Loss) (*Objective, error) {
	if n.objective {
		return nil, fmt.Errorf("grad: the net already has an objective (build another net)")
	}
	n.objective = true
	o := &Objective{Net: n, loss: loss, grads: map[*G.Node]*G.Node{}}
	out := n.Output
	var err error
	if loss != MSE {
		// Softmax over the last axis, every other axis a row: a
		// decoder's positions each predict the next token.
		s := out.Shape()
		if len(s) < 2 {
			return nil, fmt.Errorf("%w: %v needs logits of rank 2 or more, output is %v", ErrUnsupported, loss, s)
		}
		if len(s) > 2 {
			if out, err = G.Reshape(out, []int{s.TotalSize() / s[len(s)-1], s[len(s)-1]}); err != nil {
				return nil, err
			}
		}
	}
	o.target = G.NewTensor(n.Graph, G.Float64, out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithName("target"))
	switch loss {
	case MSE:
		d, err := G.Sub(out, o.target)
		if err != nil {
			return nil, err
		}
		sq, err := G.Square(d)
		if err != nil {
			return nil, err
		}
		o.cost, err = G.Mean(sq)
		if err != nil {
			return nil, err
		}
	default:
		// Cross-entropy of the net's log-softmax against the target
		// probabilities; it differs from the KL by the target's entropy,
		// a constant that Step adds back.
		ls, err := LogSoftmax(out)
		if err != nil {
			return nil, err
		}
		p, err := G.HadamardProd(ls, o.target)
		if err != nil {
			return nil, err
		}
		s, err := G.Sum(p)
		if err != nil {
			return nil, err
		}
		o.cost, err = G.Mul(s, G.NewConstant(-1/float64(out.Shape()[0])))
		if err != nil {
			return nil, err
		}
	}
	if err := o.differentiate(); err != nil {
		return nil, err
	}
	return o, nil
}

// differentiate adds the gradient of the cost toward every weight and
// the machine that runs both.
func (o *Objective) differentiate() error {
	n := o.Net
	gs, err := G.Grad(o.cost, n.Weights...)
	if err != nil {
		return fmt.Errorf("grad: differentiating: %w", err)
	}
	for i, w := range n.Weights {
		o.grads[w] = gs[i]
	}
	o.vm = G.NewTapeMachine(n.Graph)
	return nil
}

// Step runs the net on a batch of inputs x with reference outputs ref
// (the dense model's outputs for the same rows), returns the loss and
// leaves the gradients readable with Grad until the next Step. x may
// hold a whole multiple of the net's batch: it then runs in chunks of
// the net's batch, and the loss and gradients are the whole batch's.
func (o *Objective) Step(x []float32, ref []float32) (float64, error) {
	xs, err := o.Net.only(x)
	if err != nil {
		return 0, err
	}
	return o.step(xs, ref)
}

// StepTokens is Step for a model with a token-id input: ids [batch,
// seq] flattened, ref the dense model's logits for them.
func (o *Objective) StepTokens(ids []int64, ref []float32) (float64, error) {
	xs, err := o.Net.only(ids)
	if err != nil {
		return 0, err
	}
	return o.step(xs, ref)
}

// StepInputs is Step on one batch of every input, by input name (see
// Net.ForwardInputs).
func (o *Objective) StepInputs(in map[string]ptensor.Dense, ref []float32) (float64, error) {
	xs, err := o.Net.inputsOf(in)
	if err != nil {
		return 0, err
	}
	return o.step(xs, ref)
}

// step runs one batch, in chunks of the net's batch when it holds
// several (Net.chunks): the loss and the gradients are the chunks'
// means, which for equal chunks are the whole batch's, while the tape
// holds the intermediates of one chunk only.
func (o *Objective) step(in []any, ref []float32) (float64, error) {
	xs, err := o.Net.chunks(in)
	if err != nil {
		return 0, err
	}
	k := len(xs)
	if len(ref)%k != 0 {
		return 0, fmt.Errorf("grad: %d reference values for %d chunks", len(ref), k)
	}
	if k == 1 {
		o.acc = nil
		return o.stepChunk(xs[0], ref)
	}
	if o.acc == nil {
		o.acc = map[*G.Node][]float64{}
	}
	per := len(ref) / k
	sum := 0.0
	for c, xc := range xs {
		l, err := o.stepChunk(xc, ref[c*per:(c+1)*per])
		if err != nil {
			return 0, err
		}
		sum += l
		for _, w := range o.Net.Weights {
			g := o.grads[w]
			if g == nil || g.Value() == nil {
				continue
			}
			d, _ := g.Value().Data().([]float64)
			acc := o.acc[w]
			if c == 0 {
				acc = append(acc[:0], d...)
			} else {
				for i, v := range d {
					acc[i] += v
				}
			}
			if c == k-1 {
				for i := range acc {
					acc[i] /= float64(k)
				}
			}
			o.acc[w] = acc
		}
	}
	return sum / float64(k), nil
}

// stepChunk runs the net on one chunk of the net's batch size.
func (o *Objective) stepChunk(x []any, ref []float32) (float64, error) {
	if err := o.Net.feed(x); err != nil {
		return 0, err
	}
	s := o.target.Shape()
	if len(ref) != s.TotalSize() {
		return 0, fmt.Errorf("grad: %d reference values for output %v", len(ref), s)
	}
	tgt := make([]float64, len(ref))
	entropy := 0.0
	if o.mixed != nil {
		entropy = o.mixed.target(ref, tgt, s[0])
	} else if o.loss == PseudoLabel {
		rows, cols := s[0], s[1]
		for r := range rows {
			best := r * cols
			for c := r * cols; c < (r+1)*cols; c++ {
				if ref[c] > ref[best] {
					best = c
				}
			}
			tgt[best] = 1
		}
	} else if o.loss == KL {
		rows, cols := s[0], s[1]
		for r := range rows {
			softmaxRow(ref[r*cols:(r+1)*cols], tgt[r*cols:(r+1)*cols])
			for _, p := range tgt[r*cols : (r+1)*cols] {
				if p > 0 {
					entropy -= p * math.Log(p)
				}
			}
		}
		entropy /= float64(rows)
	} else {
		for i, v := range ref {
			tgt[i] = float64(v)
		}
	}
	if err := G.Let(o.target, tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(tgt))); err != nil {
		return 0, err
	}
	o.vm.Reset()
	if err := o.vm.RunAll(); err != nil {
		return 0, err
	}
	c, err := floats(o.cost.Value())
	if err != nil {
		return 0, err
	}
	return c[0] - entropy, nil
}

// Grad returns the gradient of the last Step's loss with respect to the
// weight name (live: copy it to keep it past the next Step), or nil.
func (o *Objective) Grad(name string) []float64 {
	w := o.Net.byName[name]
	if o.acc != nil {
		return o.acc[w]
	}
	g := o.grads[w]
	if g == nil || g.Value() == nil {
		return nil
	}
	d, _ := g.Value().Data().([]float64)
	return d
}

// Output returns the net's output of the last Step, flattened.
func (o *Objective) Output() ([]float64, error) { return floats(o.Net.Output.Value()) }

func softmaxRow(in []float32, out []float64) {
	m := math.Inf(-1)
	for _, v := range in {
		m = math.Max(m, float64(v))
	}
	sum := 0.0
	for i, v := range in {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
}
