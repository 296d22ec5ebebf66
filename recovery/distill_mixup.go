package recovery

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// Function matching (Beyer et al., "Knowledge distillation: A good
// teacher is patient and consistent", 2022): the student and the dense
// teacher see the same heavily augmented inputs, so the student matches
// the teacher's function around the data, not at the few unlabelled
// inputs alone. The augmentation here is mixup of two unlabelled inputs,
// which needs nothing of the domain but float inputs: token ids cannot
// be mixed.

// teacher runs the dense model in onnxruntime.
type teacher struct {
	run *calib.Runner
	out string // the model's output
}

func newTeacher(dense *graph.Model) (*teacher, error) {
	r, err := calib.NewRunner(dense, nil)
	if err != nil {
		return nil, fmt.Errorf("recover kd: dense model: %w", err)
	}
	return &teacher{run: r, out: dense.Graph.Outputs[0].Name}, nil
}

func (t *teacher) close() { t.run.Close() }

// outputs returns the dense model's output on one batch of its
// inputs, flattened.
func (t *teacher) outputs(ctx context.Context, in map[string]tensor.Dense) ([]float32, error) {
	vals, err := t.run.Run(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("recover kd: dense model: %w", err)
	}
	y, err := vals[t.out].Float32s()
	if err != nil {
		return nil, fmt.Errorf("recover kd: dense output %s: %w", t.out, err)
	}
	return y, nil
}

// mixer draws batches of mixes λa + (1−λ)b of two training samples a
// and b picked at random, λ uniform on [0, 1] (Beta(1, 1)) per mix.
type mixer struct {
	rng   *rand.Rand
	input string         // the model's only input
	pool  []tensor.Dense // the training batches, float32, rows samples each
	rows  int            // samples per batch
	size  int            // values per sample
	// The latest batch's sample pairs (indices over the pool, batch
	// k/rows, row k%rows) and weights λ of a.
	a, b []int
	lam  []float32
}

func newMixer(pool []tensor.Dense, input string, seed uint64) (*mixer, error) {
	rows := int(pool[0].Shape[0])
	for _, x := range pool {
		if _, ok := x.Data.([]float32); !ok {
			return nil, fmt.Errorf("recover kd: mixup needs float32 inputs, not %v", x.DType)
		}
	}
	return &mixer{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), input: input, pool: pool, rows: rows, size: pool[0].Len() / rows}, nil
}

// sample returns the values of training sample k.
func (m *mixer) sample(k int) []float32 {
	v := m.pool[k/m.rows].Data.([]float32)
	r := k % m.rows
	return v[r*m.size : (r+1)*m.size]
}

// batch draws one batch of mixes, shaped as the training batches.
func (m *mixer) batch() map[string]tensor.Dense {
	n := len(m.pool) * m.rows
	out := make([]float32, m.rows*m.size)
	m.a, m.b, m.lam = make([]int, m.rows), make([]int, m.rows), make([]float32, m.rows)
	for i := range m.rows {
		a, b, lam := m.rng.IntN(n), m.rng.IntN(n), m.rng.Float32()
		m.a[i], m.b[i], m.lam[i] = a, b, lam
		va, vb, dst := m.sample(a), m.sample(b), out[i*m.size:(i+1)*m.size]
		for j := range dst {
			dst[j] = lam*va[j] + (1-lam)*vb[j]
		}
	}
	return map[string]tensor.Dense{m.input: {DType: m.pool[0].DType, Shape: append([]int64(nil), m.pool[0].Shape...), Data: out}}
}

// trainBatches yields each step's training batch and the dense outputs
// the student is trained toward on it.
type trainBatches struct {
	xs      []map[string]tensor.Dense
	refs    [][]float32 // the dense outputs on xs
	mix     *mixer      // nil: the batches of xs in turn
	teacher *teacher
}

func (b *trainBatches) next(ctx context.Context, step int) (map[string]tensor.Dense, []float32, error) {
	if b.mix == nil {
		return b.xs[step%len(b.xs)], b.refs[step%len(b.xs)], nil
	}
	x := b.mix.batch()
	ref, err := b.teacher.outputs(ctx, x)
	return x, ref, err
}
