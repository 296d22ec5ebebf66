package calib

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// memBatches is calibration data held in memory.
type memBatches map[string]tensor.Dense

func (b memBatches) Len() int {
	for _, v := range b {
		return int(v.Rows())
	}
	return 0
}

func (b memBatches) Batch(i, j int) (map[string]tensor.Dense, error) {
	return ort.SliceRows(b, int64(i), int64(j))
}

// Whatever the run budget, Stream reduces the same values: with a budget
// below one sample of one tensor every run holds one tensor of one
// sample, with a large one a run holds every tensor of many samples, and
// the per-tensor sums agree.
func TestStreamBudgetSplitsPassesAndBatches(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Conv" || n.Op() == "Relu" {
			names = append(names, n.Output(0))
		}
	}
	const samples = 12
	src := noiseImages(t, rand.New(rand.NewPCG(1, 2)), samples)

	run := func(budget int64) (sums map[string]float64, rows map[string]int, maxNames, maxRows int) {
		t.Helper()
		old := RunBudget
		RunBudget = budget
		defer func() { RunBudget = old }()
		sums, rows = map[string]float64{}, map[string]int{}
		next := map[string]int{}
		err := Stream(context.Background(), m, src, names, 32, func(vals map[string]tensor.Dense, first, n int) error {
			maxNames, maxRows = max(maxNames, len(vals)), max(maxRows, n)
			for name, d := range vals {
				if first != next[name] {
					t.Errorf("%s: batch starts at %d, want %d", name, first, next[name])
				}
				next[name] = first + n
				v, err := d.Float64s()
				if err != nil {
					return err
				}
				for _, f := range v {
					sums[name] += f
				}
				rows[name] += n
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return sums, rows, maxNames, maxRows
	}
	big, bigRows, bigNames, bigBatch := run(1 << 30)
	small, smallRows, smallNames, smallBatch := run(1)
	if bigNames != len(names) || bigBatch <= 1 {
		t.Errorf("large budget: runs held at most %d of %d tensors and %d samples", bigNames, len(names), bigBatch)
	}
	if smallNames != 1 || smallBatch != 1 {
		t.Errorf("one-byte budget: a run held %d tensors of %d samples, want 1 of 1", smallNames, smallBatch)
	}
	for _, name := range names {
		if bigRows[name] != samples || smallRows[name] != samples {
			t.Errorf("%s: %d and %d samples seen, want %d", name, bigRows[name], smallRows[name], samples)
		}
		if d := math.Abs(big[name] - small[name]); d > 1e-6*(1+math.Abs(big[name])) {
			t.Errorf("%s: sum %v in one pass, %v in many", name, big[name], small[name])
		}
	}
}

// The memory of a calibration run does not depend on the number of
// samples: with the budget fixed, 8 and 64 samples run the same passes in
// batches of the same size (the state kept between runs is the caller's
// per-tensor statistics), and the batch is sized by the run's working set,
// intermediates included: capturing only the classifier's input, whose
// one sample is tiny next to the convolutions' outputs computed on the
// way, still runs few samples at once.
func TestStreamRunsIndependentOfSamples(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var convs []string
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Conv" {
			convs = append(convs, n.Output(0))
		}
	}
	last := m.Graph.Nodes[len(m.Graph.Nodes)-1]
	head := []string{last.Input(0)}
	rng := rand.New(rand.NewPCG(3, 4))
	data := func(samples int) memBatches { return noiseImages(t, rng, samples) }
	old := RunBudget
	defer func() { RunBudget = old }()
	RunBudget = 2 << 20
	shape := func(names []string, samples int) (passes, maxRows int) {
		t.Helper()
		seen := map[string]bool{}
		err := Stream(context.Background(), m, data(samples), names, 1000, func(vals map[string]tensor.Dense, first, n int) error {
			if first == 0 {
				passes++
			}
			maxRows = max(maxRows, n)
			for name := range vals {
				seen[name] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(names) {
			t.Fatalf("%d of %d names seen", len(seen), len(names))
		}
		return passes, maxRows
	}
	p8, b8 := shape(convs, 8)
	p64, b64 := shape(convs, 64)
	if p8 != p64 || b8 != b64 || b64 >= 8 {
		t.Errorf("convolutions: %d passes of batch %d over 8 samples, %d of %d over 64 (want the same, under 8)", p8, b8, p64, b64)
	}
	est := estimate(m)
	ws := est.workingSet(m, head)
	if ws.peak < 10*ws.returned {
		t.Fatalf("working set of the head alone: peak %d bytes per sample, returned %d: intermediates not counted", ws.peak, ws.returned)
	}
	_, bh := shape(head, 64)
	t.Logf("convolutions: %d passes, batch %d; head: peak %d, returned %d bytes per sample, batch %d", p64, b64, ws.peak, ws.returned, bh)
	if int64(bh)*ws.peak > RunBudget {
		t.Errorf("head: batches of %d samples of a %d-byte working set each, over the %d-byte budget", bh, ws.peak, RunBudget)
	}
}

// noiseImages draws samples standard-normal 1×28×28 images from rng as
// the "input" of the Fashion-MNIST fixtures.
func noiseImages(t *testing.T, rng *rand.Rand, samples int) memBatches {
	t.Helper()
	x := make([]float32, samples*28*28)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	in, err := tensor.New([]int64{int64(samples), 1, 28, 28}, x)
	if err != nil {
		t.Fatal(err)
	}
	return memBatches{"input": in}
}
