package recovery

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// DistillConfig sets the knowledge-distillation recovery.
type DistillConfig struct {
	Steps int     // optimizer steps (one calibration batch each)
	Batch int     // samples per step
	LR    float64 // Adam learning rate (default 1e-3)
}

// Distill trains the pruned model m toward the dense model's outputs on
// the unlabelled calibration data: KL divergence between their softmax
// outputs (MSE for outputs that are not 2-D logits), Adam, gradients
// from package grad's gorgonia translation, cycling through the
// calibration batches. The trained weights are written back into m's
// initializers; BatchNormalization running statistics are kept. A model
// with an op grad has no rule for is refused naming the op.
func Distill(ctx context.Context, m, dense *graph.Model, src *calib.Source, cfg DistillConfig) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("prune: --recover kd needs calibration data")
	}
	lr := cfg.LR
	if lr <= 0 {
		lr = 1e-3
	}
	batch := min(src.Fit(max(cfg.Batch, 1)), src.Len())
	teacher, err := grad.Build(dense, batch)
	if err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	student, err := grad.Build(m, batch)
	if err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	loss := grad.KL
	if student.Output.Dims() != 2 {
		loss = grad.MSE
	}
	obj, err := grad.NewObjective(student, loss)
	if err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	// The teacher's outputs are fixed: compute them once per batch.
	var xs, refs [][]float32
	err = src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
		for _, d := range in {
			x, ok := d.Data.([]float32)
			if !ok || len(in) != 1 {
				return fmt.Errorf("recover kd: one float32 input needed")
			}
			if int(d.Shape[0]) != batch {
				return nil // a last partial batch
			}
			out, err := teacher.Forward(x)
			if err != nil {
				return err
			}
			ref := make([]float32, len(out))
			for i, v := range out {
				ref[i] = float32(v)
			}
			xs, refs = append(xs, x), append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return nil, fmt.Errorf("recover kd: no full batch of %d samples", batch)
	}
	names := student.WeightNames()
	adam := newAdam(student, names, lr)
	var first, last float64
	for step := range cfg.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := obj.Step(xs[step%len(xs)], refs[step%len(xs)])
		if err != nil {
			return nil, fmt.Errorf("recover kd: step %d: %w", step, err)
		}
		if step == 0 {
			first = l
		}
		last = l
		adam.step(obj)
	}
	if err := student.WriteBack(m); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("%d Adam steps (lr %g) of %s toward the dense outputs on %d calibration batches of %d: loss %.4g → %.4g",
		cfg.Steps, lr, loss, len(xs), batch, first, last)}, nil
}

// adam is Adam (β1 0.9, β2 0.999, ε 1e-8) over the net's live weights.
type adam struct {
	net    *grad.Net
	names  []string
	lr     float64
	t      int
	m1, m2 map[string][]float64
}

func newAdam(n *grad.Net, names []string, lr float64) *adam {
	a := &adam{net: n, names: names, lr: lr, m1: map[string][]float64{}, m2: map[string][]float64{}}
	for _, name := range names {
		k := len(n.Data(name))
		a.m1[name], a.m2[name] = make([]float64, k), make([]float64, k)
	}
	return a
}

func (a *adam) step(o *grad.Objective) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	a.t++
	c1, c2 := 1-math.Pow(b1, float64(a.t)), 1-math.Pow(b2, float64(a.t))
	for _, name := range a.names {
		g, w := o.Grad(name), a.net.Data(name)
		m1, m2 := a.m1[name], a.m2[name]
		for i := range w {
			m1[i] = b1*m1[i] + (1-b1)*g[i]
			m2[i] = b2*m2[i] + (1-b2)*g[i]*g[i]
			w[i] -= a.lr * (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + eps)
		}
	}
}
