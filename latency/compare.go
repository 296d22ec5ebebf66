package latency

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/ort"
)

// Comparison is the measured latency of a pruned model against its
// dense model.
type Comparison struct {
	// DenseUs and PrunedUs are median CPU times of the calling thread
	// (µs; wall time where the thread's CPU clock is not readable).
	DenseUs, PrunedUs float64
	// Ratio is the median over runs of the pruned run's time over the
	// dense run's next to it; Runs the timed runs of each model.
	Ratio float64
	Runs  int
}

// Compare times the dense and the pruned model whole, in onnxruntime with
// one intra-op thread at batch one on synthesized inputs, run by run in
// turn, so that a shared machine's noise falls on both alike. The table
// of Build estimates layers measured alone; this measures what the
// estimate stands for. It runs each model at least runs times after
// warmup, and more while the timed runs take less than budget (up to 20
// × runs): a small model's median of a few runs is noise on a shared
// machine.
func Compare(ctx context.Context, dense, pruned []byte, warmup, runs int, budget time.Duration) (Comparison, error) {
	if runs <= 0 || warmup < 0 {
		return Comparison{}, fmt.Errorf("latency: compare: need runs > 0 and warmup >= 0, have %d and %d", runs, warmup)
	}
	var timers []*ort.Timer
	for i, b := range [][]byte{dense, pruned} {
		s, err := ort.NewSession(b, ort.Options{Threads: 1})
		if err != nil {
			return Comparison{}, fmt.Errorf("latency: compare: %s model: %w", []string{"dense", "pruned"}[i], err)
		}
		defer s.Close()
		in, err := check.Synthesize(s.Inputs(), check.SynthOptions{Samples: 1})
		if err != nil {
			return Comparison{}, err
		}
		t, err := s.NewTimer(in)
		if err != nil {
			return Comparison{}, err
		}
		defer t.Close()
		timers = append(timers, t)
	}
	times := make([][]time.Duration, len(timers))
	start := time.Now()
	for r := 0; r < warmup+runs || (time.Since(start) < budget && r < warmup+20*runs); r++ {
		if r == warmup {
			start = time.Now()
		}
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
			}
		}
	}
	med := func(ts []time.Duration) float64 {
		slices.Sort(ts)
		return float64(ts[len(ts)/2].Nanoseconds()) / 1e3
	}
	// The ratio of each pruned run to the dense run next to it, then
	// their median: a change of the machine's load between runs falls
	// on both members of a pair.
	ratios := make([]float64, len(times[0]))
	for i := range ratios {
		ratios[i] = float64(times[1][i]) / max(float64(times[0][i]), 1)
	}
	slices.Sort(ratios)
	c := Comparison{Runs: len(times[0]), DenseUs: med(times[0]), PrunedUs: med(times[1]), Ratio: ratios[len(ratios)/2]}
	return c, nil
}
