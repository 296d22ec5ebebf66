package ort

import (
	"context"
	"fmt"
	"math"
	"runtime"
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
// the same inputs, and summarises the timed runs. See Timer for what a
// run covers.
func (s *Session) Time(ctx context.Context, inputs map[string]tensor.Dense, warmup, runs int) (Latency, error) {
	if warmup < 0 || runs <= 0 {
		return Latency{}, fmt.Errorf("ort: %s: need warmup >= 0 and runs > 0, have %d and %d", s.name, warmup, runs)
	}
	tm, err := s.NewTimer(inputs)
	if err != nil {
		return Latency{}, err
	}
	defer tm.Close()
	times := make([]time.Duration, 0, runs)
	for i := range warmup + runs {
		d, err := tm.Run(ctx)
		if err != nil {
			return Latency{}, err
		}
		if i >= warmup {
			times = append(times, d)
		}
	}
	return Summarise(times, s.threads, warmup), nil
}

// Timer times single runs of a session on fixed inputs, so that callers
// can interleave the runs of several models and let machine noise fall
// on all of them alike. A timed run covers onnxruntime's Run call and the
// copy of its outputs into Go memory (as Run pays too); the input tensors
// are created once, by NewTimer. A Timer is not safe for concurrent use.
type Timer struct {
	s    *Session
	in   []ort.Value
	outs []ort.Value
}

// NewTimer validates inputs and prepares them for timed runs; Close
// releases them.
func (s *Session) NewTimer(inputs map[string]tensor.Dense) (*Timer, error) {
	in, err := s.inputValues(inputs)
	if err != nil {
		return nil, err
	}
	return &Timer{s: s, in: in, outs: make([]ort.Value, s.nOut)}, nil
}

// Run runs the session once and returns the time it took.
func (t *Timer) Run(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	err := t.s.runRaw(ctx, t.in, t.outs)
	elapsed := time.Since(start)
	destroyAll(t.outs)
	return elapsed, err
}

// RunCPU runs the session once and returns the wall time and the CPU
// time of the calling thread, which runs onnxruntime's kernels when the
// session has one intra-op thread. On a machine shared with other jobs
// the CPU time leaves out the time the thread waited for a core, so
// ratios of CPU times between models are steadier than ratios of wall
// times. ok is false where thread CPU time is not available.
func (t *Timer) RunCPU(ctx context.Context) (wall, cpu time.Duration, ok bool, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := threadCPU()
	wall, err = t.Run(ctx)
	c1, ok1 := threadCPU()
	return wall, c1 - c0, ok0 && ok1, err
}

// Close destroys the input tensors.
func (t *Timer) Close() { destroyAll(t.in) }

// Summarise computes order statistics of timed runs (at least one);
// quantiles use the nearest rank.
func Summarise(times []time.Duration, threads, warmup int) Latency {
	if len(times) == 0 {
		return Latency{Threads: threads, Warmup: warmup}
	}
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
