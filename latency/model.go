package latency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// Options set what is measured and where it is cached.
type Options struct {
	// CacheDir holds the measurements ("" is DefaultCacheDir).
	CacheDir string
	// Fractions of each pruned axis measured (default 1, 0.75, 0.5,
	// 0.25); counts are rounded to multiples of Step (default 16, at
	// least min(Step, size)). Latencies in between are interpolated.
	Fractions []float64
	Step      int
	// Warmup and Runs per measurement (default 2 and 10): the least of
	// the runs' CPU times on the calling thread (onnxruntime with one
	// intra-op thread runs its kernels there), which on a shared
	// machine leaves out the waits for a core and, of the runs, keeps
	// the one other jobs disturbed least (see Compare).
	Warmup, Runs int
	// Logf, when set, reports progress.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Fractions) == 0 {
		o.Fractions = []float64{1, 0.75, 0.5, 0.25}
	}
	if o.Step <= 0 {
		o.Step = 16
	}
	if o.Warmup <= 0 {
		o.Warmup = 2
	}
	if o.Runs <= 0 {
		o.Runs = 10
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = d
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

// Model is a prune.LatencyModel from measurements.
type Model struct {
	layers []layerModel
	rest   float64
	// Whole is the measured latency of the model as given (µs);
	// Measured and Cached count the measurements made and the ones
	// the cache already held.
	Whole            float64
	Measured, Cached int
}

// layerModel is one layer's latency over a grid of widths.
type layerModel struct {
	s      shape
	gridOK bool
	full   []int64
	fullUs float64
	outs   []int64     // grid of output counts, ascending
	ins    []int64     // grid of input counts, ascending; one entry without an in axis
	us     [][]float64 // us[i][j]: latency at outs[i], ins[j]
}

// Build measures (or reads from the cache) the latency of every layer of
// an at the grid of widths and of the whole model m, at batch one. m's
// inputs must have fixed sizes other than the batch.
func Build(ctx context.Context, m *graph.Model, an *prune.Analysis, o Options) (*Model, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// The cache file is named after the onnxruntime version: load the
	// library first (a no-op when the caller did).
	if err := ort.Init(""); err != nil {
		return nil, err
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	out := &Model{}
	measure := func(key string, model func() ([]byte, error), inputs func(*ort.Session) (map[string]tensor.Dense, error)) (float64, error) {
		if us, ok := c.get(key); ok {
			out.Cached++
			return us, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, err := model()
		if err != nil {
			return 0, err
		}
		us, err := timeModel(ctx, b, inputs, o.Warmup, o.Runs)
		if err != nil {
			return 0, err
		}
		c.put(key, us)
		out.Measured++
		return us, nil
	}
	zeros := func(v variant) func(*ort.Session) (map[string]tensor.Dense, error) {
		return func(*ort.Session) (map[string]tensor.Dense, error) {
			x, err := tensor.Zeros(tensor.Float32, v.data)
			return map[string]tensor.Dense{"x": x}, err
		}
	}
	// A one-node model also pays onnxruntime's per-run cost; measured
	// on the smallest model and taken off every layer.
	tiny := variant{op: "Relu", data: []int64{1, 1}}
	overhead, err := measure("overhead "+tiny.key(), tiny.reluModel, zeros(tiny))
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	layerUs := func(v variant) (float64, error) {
		us, err := measure(v.key(), v.model, zeros(v))
		if err != nil {
			return 0, err
		}
		return max(us-overhead, 0.01*us), nil
	}
	layers := an.Layers()
	o.Logf("latency: %d layers, cache %s", len(layers), c.path)
	var sumFull float64
	for i, l := range layers {
		lm := layerModel{full: slices.Clone(l.Dims)}
		s, ok := shapeOf(l)
		lm.s, lm.gridOK = s, ok
		if len(l.Dims) == 0 || len(l.DataShape) == 0 {
			out.layers = append(out.layers, lm)
			continue
		}
		if lm.fullUs, err = layerUs(s.at(l.Dims)); err != nil {
			// A layer onnxruntime cannot run alone (an unusual
			// attribute) stays in the rest of the model.
			o.Logf("latency: %s: not measured alone: %v", l.Node.Name(), err)
			lm.full = nil
			out.layers = append(out.layers, lm)
			continue
		}
		sumFull += lm.fullUs
		if ok {
			lm.outs = grid(l.Dims[s.out], o.Fractions, o.Step)
			lm.ins = []int64{-1}
			if s.in >= 0 {
				lm.ins = grid(l.Dims[s.in], o.Fractions, o.Step)
			}
			lm.us = make([][]float64, len(lm.outs))
			for a, oc := range lm.outs {
				lm.us[a] = make([]float64, len(lm.ins))
				for b, ic := range lm.ins {
					w := slices.Clone(l.Dims)
					w[s.out] = oc
					if s.in >= 0 {
						w[s.in] = ic
					}
					if lm.us[a][b], err = layerUs(s.at(w)); err != nil {
						return nil, fmt.Errorf("latency: %s at weight %v: %w", l.Node.Name(), w, err)
					}
				}
			}
		}
		lm.monotone()
		out.layers = append(out.layers, lm)
		progress.Report(ctx, "latency table", i+1, len(layers))
		if (i+1)%20 == 0 {
			o.Logf("latency: %d of %d layers (%d measured, %d cached)", i+1, len(layers), out.Measured, out.Cached)
			if err := c.save(); err != nil {
				return nil, err
			}
		}
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	whole, err := measure("model "+hex.EncodeToString(sum[:]), func() ([]byte, error) { return b, nil }, func(s *ort.Session) (map[string]tensor.Dense, error) {
		return check.Synthesize(s.Inputs(), check.SynthOptions{Samples: 1})
	})
	if err != nil {
		return nil, fmt.Errorf("latency: the whole model: %w", err)
	}
	out.Whole = max(whole-overhead, 0)
	// What the layers do not cover: activations, normalisations,
	// concatenations, layout changes. It is kept fixed, so the budget
	// falls on the layers (a conservative estimate: the rest shrinks
	// with the channels too).
	out.rest = max(out.Whole-sumFull, 0)
	if err := c.save(); err != nil {
		return nil, err
	}
	o.Logf("latency: model %.0f µs, layers %.0f µs, rest %.0f µs (%d measured, %d cached)", out.Whole, sumFull, out.rest, out.Measured, out.Cached)
	return out, nil
}

// monotone makes the grid non-decreasing in both widths (a running
// maximum from the narrowest point): more channels never cost less, and
// a grid point that measured faster than a narrower one (noise on a
// shared machine) would make the estimate jump back and forth as the
// selection removes channels.
func (lm *layerModel) monotone() {
	for a := range lm.us {
		for b := 1; b < len(lm.us[a]); b++ {
			lm.us[a][b] = max(lm.us[a][b], lm.us[a][b-1])
		}
		if a > 0 {
			for b := range lm.us[a] {
				lm.us[a][b] = max(lm.us[a][b], lm.us[a-1][b])
			}
		}
	}
	if n := len(lm.us); n > 0 {
		// The full-size point is the grid's last.
		lm.fullUs = max(lm.fullUs, lm.us[n-1][len(lm.us[n-1])-1])
	}
}

// grid lists the counts measured for an axis of n: fractions of n
// rounded to multiples of step, at least min(step, n), ascending.
func grid(n int64, fractions []float64, step int) []int64 {
	st := int64(step)
	var out []int64
	for _, f := range fractions {
		c := int64(math.Round(f*float64(n)/float64(st))) * st
		c = min(max(c, min(st, n)), n)
		out = append(out, c)
	}
	out = append(out, n)
	slices.Sort(out)
	return slices.Compact(out)
}

// Layer is prune.LatencyModel.Layer.
func (m *Model) Layer(i int, dims []int64) float64 {
	if i < 0 || i >= len(m.layers) {
		return 0
	}
	lm := m.layers[i]
	if lm.full == nil {
		return 0
	}
	if !lm.gridOK || len(dims) != len(lm.full) {
		// Scaled by its MACs from the full-size measurement.
		return lm.fullUs * float64(prod(dims)) / float64(max(prod(lm.full), 1))
	}
	oc := dims[lm.s.out]
	ic := int64(-1)
	if lm.s.in >= 0 {
		ic = dims[lm.s.in]
	}
	row := func(a int) float64 { return interp(lm.ins, lm.us[a], ic) }
	rows := make([]float64, len(lm.outs))
	for a := range lm.outs {
		rows[a] = row(a)
	}
	return interp(lm.outs, rows, oc)
}

// Rest is prune.LatencyModel.Rest.
func (m *Model) Rest() float64 { return m.rest }

// interp interpolates ys over xs (ascending) at x: linearly between grid
// points, toward zero below the first.
func interp(xs []int64, ys []float64, x int64) float64 {
	if len(xs) == 1 {
		if xs[0] <= 0 {
			return ys[0]
		}
		return ys[0] * float64(x) / float64(xs[0])
	}
	if x <= xs[0] {
		return ys[0] * float64(max(x, 0)) / float64(xs[0])
	}
	for k := 1; k < len(xs); k++ {
		if x <= xs[k] {
			t := float64(x-xs[k-1]) / float64(xs[k]-xs[k-1])
			return ys[k-1] + t*(ys[k]-ys[k-1])
		}
	}
	return ys[len(ys)-1]
}

// timeModel returns the least CPU time of runs runs (µs) after warmup.
func timeModel(ctx context.Context, b []byte, inputs func(*ort.Session) (map[string]tensor.Dense, error), warmup, runs int) (float64, error) {
	s, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	in, err := inputs(s)
	if err != nil {
		return 0, err
	}
	t, err := s.NewTimer(in)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	times := make([]time.Duration, 0, runs)
	for r := range warmup + runs {
		wall, cpu, ok, err := t.RunCPU(ctx)
		if err != nil {
			return 0, err
		}
		if !ok {
			cpu = wall
		}
		if r >= warmup {
			times = append(times, cpu)
		}
	}
	return float64(slices.Min(times).Nanoseconds()) / 1e3, nil
}

// reluModel is the tiny model that measures onnxruntime's per-run cost.
func (v variant) reluModel() ([]byte, error) {
	v.attrs, v.dims, v.bias = nil, nil, 0
	return v.model()
}
