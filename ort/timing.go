package ort

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/tensor"
)

// Latency summarises timed runs of one session on fixed inputs.
type Latency struct {
	Threads int           `json:"threads"`
	Warmup  int           `json:"warmup"`
	Runs    int           `json:"runs"`
	Median  time.Duration `json:"median_ns"`
	P90     time.Duration `json:"p90_ns"`
	Mean    time.Duration `json:"mean_ns"`
	Min     time.Duration `json:"min_ns"`
	Max     time.Duration `json:"max_ns"`
}

// Time runs the session warmup times untimed, then runs times timed, on
// the same inputs. Each timed run covers onnxruntime's Run call and the
// copy of its outputs into Go memory (as Run pays too); input tensors are
// created once, outside the timing.
func (s *Session) Time(ctx context.Context, inputs map[string]tensor.Dense, warmup, runs int) (Latency, error) {
	if warmup < 0 || runs <= 0 {
		return Latency{}, fmt.Errorf("ort: %s: need warmup >= 0 and runs > 0, have %d and %d", s.name, warmup, runs)
	}
	in, err := s.inputValues(inputs)
	if err != nil {
		return Latency{}, err
	}
	defer destroyAll(in)
	outs := make([]ort.Value, s.nOut)
	times := make([]time.Duration, 0, runs)
	for i := range warmup + runs {
		start := time.Now()
		err := s.runRaw(ctx, in, outs)
		elapsed := time.Since(start)
		destroyAll(outs)
		if err != nil {
			return Latency{}, err
		}
		if i >= warmup {
			times = append(times, elapsed)
		}
	}
	return summarise(times, s.threads, warmup), nil
}

// summarise computes order statistics; quantiles use the nearest rank.
func summarise(times []time.Duration, threads, warmup int) Latency {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	var sum time.Duration
	for _, t := range sorted {
		sum += t
	}
	n := len(sorted)
	return Latency{
		Threads: threads,
		Warmup:  warmup,
		Runs:    n,
		Median:  median(sorted),
		P90:     sorted[nearestRank(0.9, n)],
		Mean:    sum / time.Duration(n),
		Min:     sorted[0],
		Max:     sorted[n-1],
	}
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// nearestRank is the 0-based index of quantile q among n sorted values.
func nearestRank(q float64, n int) int {
	r := int(math.Ceil(q*float64(n))) - 1
	return min(max(r, 0), n-1)
}
