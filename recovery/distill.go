package recovery

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/tensor"
)

// DistillConfig sets the knowledge-distillation recovery.
type DistillConfig struct {
	Steps int     // optimizer steps (one batch each)
	Batch int     // samples per step
	LR    float64 // Adam's initial learning rate (default 1e-3)
	// Schedule is the learning rate over the steps, ScheduleConstant or
	// ScheduleCosine ("": DefaultSchedule).
	Schedule string
	// Mixup trains each step on a fresh batch of mixes of two random
	// training inputs, with the dense model's outputs on those same
	// mixes (mixer). Float inputs only: a token-id input keeps plain
	// batches, and the notes say so.
	Mixup bool
	// Seed draws the mixes (the same seed, the same run).
	Seed uint64
	// Chunk is the samples per gradient pass (a divisor of Batch):
	// the gorgonia tape holds one chunk's intermediates and a step
	// averages its chunks' gradients, which is the batch's gradient.
	// 0 chooses it from the input (chunkRows).
	Chunk int
}

// DefaultSchedule is the learning-rate schedule of a DistillConfig
// that names none: at 200 steps cosine did as well as a constant rate
// on the trained Fashion-MNIST models at 70% removed (better on three
// of four, within test noise), and a longer run ends on a refined
// checkpoint (docs/RESULTS.md, "Gradients").
const DefaultSchedule = ScheduleCosine

// DefaultMixup is whether pare prune --recover kd mixes float inputs
// unless told otherwise: off, mixup did not raise test accuracy within
// 600 steps on the trained Fashion-MNIST models (docs/RESULTS.md).
const DefaultMixup = false

// Distill trains the pruned model m toward the dense model's outputs on
// the unlabelled calibration data: KL divergence between their softmax
// outputs (MSE for outputs that are not logits: a float-input model's
// outputs that are not 2-D, a token model's hidden states), Adam, gradients
// from package grad's gorgonia translation, on the calibration batches
// but the last eighth (at least one), held out to choose the checkpoint
// kept: in turn, or mixed (cfg.Mixup). The dense model runs in
// onnxruntime. The trained weights are written back into m's
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
	schedule := cfg.Schedule
	if schedule == "" {
		schedule = DefaultSchedule
	}
	if err := checkSchedule(schedule); err != nil {
		return nil, err
	}
	batch := min(src.Fit(max(cfg.Batch, 1)), src.Len())
	// The first batch gives the input's shape: a decoder's sequence
	// length is fixed by the data, not the model.
	sample, err := src.Batch(0, batch)
	if err != nil {
		return nil, err
	}
	// The teacher takes the data as it is; a student whose cache lost
	// heads takes its kept positions (ioslice).
	kept, err := ioslice.FromModel(m.Proto)
	if err != nil {
		return nil, err
	}
	if sample, err = kept.SliceAll(sample); err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	// The first input sets the shape (the pixels, or the token ids
	// beside which an export's mask and positions take the same axes).
	input := m.Graph.Inputs[0].Name
	lead, ok := sample[input]
	if !ok {
		return nil, fmt.Errorf("recover kd: the data has no values for input %s", input)
	}
	shape := slices.Clone(lead.Shape)
	tokens := tokenIDs(lead)
	chunk := cfg.Chunk
	if chunk <= 0 || batch%chunk != 0 {
		chunk = grad.ChunkRows(batch, shape, tokens)
	}
	student, err := grad.BuildInputs(m, grad.ChunkShapes(sample, chunk))
	if err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	loss := outputLoss(m, student.Output.Dims(), student.Tokens())
	var notes []string
	if outs := m.Graph.Outputs; len(outs) > 1 {
		notes = append(notes, fmt.Sprintf("distilled on output %s; the other %d outputs (a key/value cache) follow from the same weights", outs[0].Name, len(outs)-1))
	}
	obj, err := grad.NewObjective(student, loss)
	if err != nil {
		return nil, fmt.Errorf("recover kd: %w", err)
	}
	cols := student.Output.Shape()[student.Output.Dims()-1]
	tch, err := newTeacher(dense)
	if err != nil {
		return nil, err
	}
	defer tch.close()
	// The teacher's outputs on the data's own batches are fixed:
	// computed once per batch.
	var xs []map[string]tensor.Dense
	var refs [][]float32
	err = src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
		if int(in[input].Shape[0]) != batch {
			return nil // a last partial batch
		}
		ref, err := tch.outputs(ctx, in)
		if err != nil {
			return err
		}
		if in, err = kept.SliceAll(in); err != nil {
			return err
		}
		xs, refs = append(xs, in), append(refs, ref)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return nil, fmt.Errorf("recover kd: no full batch of %d samples", batch)
	}
	// With two batches or more, the last eighth of them (at least one,
	// at most maxHeldOut) is held out: the weights kept are those with
	// the lowest held-out loss among the checkpoints (the pruned model
	// itself included), so that fitting a small calibration set cannot
	// make the model worse on data it did not see. The held-out batches are never mixed.
	// With one batch there is nothing to hold out, and the checkpoints
	// are compared on that batch itself: Adam's first steps can raise
	// the loss, and a run that ends above where it started must not be
	// written.
	train := len(xs)
	checked := 0
	if len(xs) >= 2 {
		train -= min(max(1, len(xs)/8), maxHeldOut)
		checked = train
	}
	held := func() (float64, error) {
		sum := 0.0
		for i := checked; i < len(xs); i++ {
			out, err := student.ForwardInputs(xs[i])
			if err != nil {
				return 0, err
			}
			sum += distance(loss, out, refs[i], cols)
		}
		return sum / float64(len(xs)-checked), nil
	}
	var mix *mixer
	if cfg.Mixup {
		switch {
		case student.Tokens():
			notes = append(notes, "mixup: the input is token ids, which do not mix; plain batches")
		case len(m.Graph.Inputs) > 1:
			notes = append(notes, fmt.Sprintf("mixup: the model takes %d inputs, which are not mixed together; plain batches", len(m.Graph.Inputs)))
		default:
			pool := make([]tensor.Dense, train)
			for i, x := range xs[:train] {
				pool[i] = x[input]
			}
			if mix, err = newMixer(pool, input, cfg.Seed); err != nil {
				return nil, err
			}
		}
	}
	batches := &trainBatches{xs: xs[:train], refs: refs[:train], mix: mix, teacher: tch}
	names := student.WeightNames()
	adam := newAdam(student, names, lr)
	best, bestStep := math.Inf(1), 0
	var snapshot map[string][]float64
	checkpoint := func(step int) error {
		l, err := held()
		if err != nil {
			return err
		}
		if l < best {
			best, bestStep = l, step
			snapshot = map[string][]float64{}
			for _, n := range names {
				snapshot[n] = append([]float64(nil), student.Data(n)...)
			}
		}
		return nil
	}
	if err := checkpoint(0); err != nil {
		return nil, err
	}
	start := best
	var first, last float64
	for step := range cfg.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, ref, err := batches.next(ctx, step)
		if err != nil {
			return nil, err
		}
		l, err := obj.StepInputs(x, ref)
		if err != nil {
			return nil, fmt.Errorf("recover kd: step %d: %w", step, err)
		}
		if step == 0 {
			first = l
		}
		last = l
		adam.lr = lrAt(schedule, lr, step, cfg.Steps)
		adam.step(obj)
		if (step+1)%checkEvery == 0 || step+1 == cfg.Steps {
			if err := checkpoint(step + 1); err != nil {
				return nil, err
			}
		}
	}
	for n, v := range snapshot {
		copy(student.Data(n), v)
	}
	if err := student.WriteBack(m); err != nil {
		return nil, err
	}
	data := fmt.Sprintf("%d batches of %d unlabelled inputs", train, batch)
	if mix != nil {
		data = fmt.Sprintf("mixes of two of %d unlabelled inputs (batches of %d, the dense outputs on each mix)", train*batch, batch)
	}
	notes = append(notes, fmt.Sprintf("%d Adam steps (lr %g, %s) of %s toward the dense outputs on %s (gradients in chunks of %d): training loss %.4g → %.4g",
		cfg.Steps, lr, schedule, loss, data, chunk, first, last))
	if checked > 0 {
		notes = append(notes, fmt.Sprintf("held-out loss (%d batches) %.4g → %.4g; weights of step %d kept", len(xs)-train, start, best, bestStep))
	} else {
		notes = append(notes, fmt.Sprintf("one batch, none held out (give more --recover-data): loss on it %.4g → %.4g at the checkpoints; weights of step %d kept", start, best, bestStep))
	}
	return notes, nil
}

// tokenIDs reports whether d holds integers: token ids, which the
// model's first op (an embedding) reads.
func tokenIDs(d tensor.Dense) bool {
	switch d.Data.(type) {
	case []int64, []int32:
		return true
	}
	return false
}

// outputLoss is the loss toward the dense model's first output, of the
// given rank: KL toward the dense softmax for logits (a classifier's
// rows, or every position of a decoder: its next-token distributions),
// else the MSE (an encoder's hidden states: a BERT's output is a
// LayerNorm, not a linear head). tokens: m reads token ids.
func outputLoss(m *graph.Model, rank int, tokens bool) grad.Loss {
	if (rank != 2 && !tokens) || (tokens && !linearHead(m)) {
		return grad.MSE
	}
	return grad.KL
}

// linearHead reports whether the model's output is computed by a
// MatMul or Gemm (past reshapes and a bias Add): logits of a linear
// head, as a language model's are.
func linearHead(m *graph.Model) bool {
	name := m.Graph.Outputs[0].Name
	for range 8 {
		n := m.Graph.Producer(name)
		if n == nil {
			return false
		}
		switch n.Op() {
		case "MatMul", "Gemm":
			return true
		case "Reshape", "Identity", "Transpose", "Squeeze", "Unsqueeze":
			name = n.Input(0)
		case "Add":
			// The bias may come first (a torch export's bias + x).
			name = n.Input(0)
			if m.Graph.Initializer(name) != nil {
				name = n.Input(1)
			}
		default:
			return false
		}
	}
	return false
}

// checkEvery is the steps between held-out checkpoints.
const checkEvery = 25

// maxHeldOut caps the held-out batches: every checkpoint evaluates them
// all, and an eighth of a large --recover-data (16384 images: 64
// batches) would cost more forward passes than the steps between
// checkpoints. 8 is twice what the 1024 unlabelled images hold out.
const maxHeldOut = 8

// distance is the loss between the net's outputs and the reference's
// on one batch, as the objective computes it: for KL, rows of cols
// logits (a classifier's samples, a decoder's positions).
func distance(loss grad.Loss, out []float64, ref []float32, cols int) float64 {
	if loss == grad.MSE {
		s := 0.0
		for i, v := range out {
			d := v - float64(ref[i])
			s += d * d
		}
		return s / float64(len(out))
	}
	return grad.MeanKL(ref, out, cols)
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
