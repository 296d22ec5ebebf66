package latency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/ort"
)

// Comparison is the measured latency of a pruned model against its
// dense model.
type Comparison struct {
	// DenseUs and PrunedUs are the least CPU times of the calling
	// thread over the runs (µs; wall time where the thread's CPU clock
	// is not readable).
	DenseUs, PrunedUs float64
	// Ratio is PrunedUs / DenseUs; Runs the timed runs of each model.
	Ratio float64
	Runs  int
	Batch int64
	// Inputs are the sizes of the inputs both models ran at.
	Inputs map[string][]int64
}

// CompareOptions are the settings of Compare.
type CompareOptions struct {
	Batch  int64         // rows on the batch axis
	Warmup int           // untimed runs of each model
	Runs   int           // least timed runs of each model
	Budget time.Duration // CPU time (both models) past which no more runs are made
	// Shapes fixes the sizes of named inputs past the batch axis
	// (--input-shape), as the latency table was built for; other
	// symbolic sizes get check.DefaultDim.
	Shapes map[string][]int64
}

// ErrStaticBatch is returned by Compare at a batch past one when a
// model input's batch axis is fixed.
var ErrStaticBatch = errors.New("the model's batch axis is fixed")

// Compare times the dense and the pruned model whole, in onnxruntime with
// one intra-op thread at the given batch on synthesized inputs, run by
// run in turn, so that a shared machine's noise falls on both alike. The
// table of Build estimates layers measured alone; this measures what the
// estimate stands for. It runs each model at least runs times after
// warmup, and more while the timed runs' CPU time (both models) is under
// budget, up to 20 × runs: a few runs of a small model are noise
// on a shared machine. The budget is CPU time, not wall time, so that a
// loaded machine takes longer but measures as many runs as a quiet one.
// A batch past one needs every input's batch axis symbolic
// (ErrStaticBatch otherwise).
func Compare(ctx context.Context, dense, pruned []byte, o CompareOptions) (Comparison, error) {
	batch, warmup, runs, budget := o.Batch, o.Warmup, o.Runs, o.Budget
	if runs <= 0 || warmup < 0 || batch < 1 {
		return Comparison{}, fmt.Errorf("latency: compare: need runs > 0, warmup >= 0 and batch >= 1, have %d, %d and %d", runs, warmup, batch)
	}
	var inputs map[string][]int64
	var timers []*ort.Timer
	for i, b := range [][]byte{dense, pruned} {
		s, err := ort.NewSession(b, ort.Options{Threads: 1})
		if err != nil {
			return Comparison{}, fmt.Errorf("latency: compare: %s model: %w", []string{"dense", "pruned"}[i], err)
		}
		defer s.Close()
		if batch > 1 {
			for _, in := range s.Inputs() {
				if len(in.Dims) == 0 || in.Dims[0] >= 0 {
					return Comparison{}, fmt.Errorf("latency: compare at batch %d: %s model, input %q: %w", batch, []string{"dense", "pruned"}[i], in.Name, ErrStaticBatch)
				}
			}
		}
		in, err := check.Synthesize(s.Inputs(), check.SynthOptions{Samples: batch, Shapes: o.Shapes})
		if err != nil {
			return Comparison{}, fmt.Errorf("latency: compare: %s model: %w", []string{"dense", "pruned"}[i], err)
		}
		if inputs == nil {
			inputs = make(map[string][]int64, len(in))
			for name, t := range in {
				inputs[name] = slices.Clone(t.Shape)
			}
		}
		t, err := s.NewTimer(in)
		if err != nil {
			return Comparison{}, err
		}
		defer t.Close()
		timers = append(timers, t)
	}
	times := make([][]time.Duration, len(timers))
	var spent time.Duration
	for r := 0; r < warmup+runs || (spent < budget && r < warmup+20*runs); r++ {
		for i, t := range timers {
			wall, cpu, ok, err := t.RunCPU(ctx)
			if err != nil {
				return Comparison{}, err
			}
			if !ok {
				cpu = wall
			}
			if r >= warmup {
				times[i] = append(times[i], cpu)
				spent += cpu
			}
		}
	}
	// The ratio of the two models' least CPU times: on a loaded machine
	// noise only adds time (caches refilled after the thread was
	// preempted, a busy neighbour core), and the least of many runs
	// is the run it touched least. Over repeats at load 15–18 the
	// ratio of minima varied with a standard deviation of 0.002–0.007,
	// the median of per-run ratios 0.005–0.013, the ratio of medians
	// 0.003–0.021 and wall time 0.015–0.10 (docs/BENCHMARKS.md,
	// "Measuring latency on a shared machine").
	least := func(ts []time.Duration) float64 {
		return float64(slices.Min(ts).Nanoseconds()) / 1e3
	}
	c := Comparison{Batch: batch, Runs: len(times[0]), DenseUs: least(times[0]), PrunedUs: least(times[1]), Inputs: inputs}
	c.Ratio = c.PrunedUs / max(c.DenseUs, 1e-3)
	return c, nil
}
