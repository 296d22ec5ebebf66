package calib

import (
	"context"
	"fmt"
	"runtime"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/tensor"
)

// Batches is calibration data read by sample range: a Source, or samples
// held in memory (synthetic data).
type Batches interface {
	Len() int
	Batch(i, j int) (map[string]tensor.Dense, error)
}

// RunBudget bounds the memory one onnxruntime run may take beyond the
// model: the values it returns (captured tensors are graph outputs, which
// onnxruntime cannot reuse, so a run holds all of them at once, twice:
// onnxruntime's copy and the Go copy) and the intermediate values it
// computes on the way, which grow with the batch as much as the captured
// ones. Statistics are reduced from a run's values before the next run,
// so memory depends on this budget, not on the number of samples.
var RunBudget int64 = 64 << 20

// gcAfter is the size of a run's returned values from which the Go copies
// are collected before the next run: without it the garbage of one run
// lingers while the next allocates, doubling their share of the peak.
const gcAfter = 8 << 20

// Stream runs m over src with names captured and calls visit with each
// run's captured values, the index of its first sample and its number of
// samples. The names are split into passes over the data whose captured
// values for one sample fit half of RunBudget (estimated from the
// inferred shapes, symbolic dims as 1), and each pass runs as many samples at once
// as its footprint allows (runFootprint: measured on its first,
// one-sample run, scaled by the pass's estimated working set), at most
// maxBatch. A visit sees only some of the names, in sample order per name.
func Stream(ctx context.Context, m *graph.Model, src Batches, names []string, maxBatch int, visit func(vals map[string]tensor.Dense, first, rows int) error) error {
	if len(names) == 0 || src.Len() == 0 {
		return nil
	}
	// A model with a fixed batch runs whole batches of exactly that size;
	// the remainder that does not fill one is left out.
	rows, fixed := src.Len(), int(graph.FixedBatch(m))
	if fixed > 0 {
		if rows < fixed {
			return fmt.Errorf("calib: %w: %d samples, fewer than the model's fixed batch of %d", ErrData, rows, fixed)
		}
		rows -= rows % fixed
	}
	est := estimate(m)
	// A run holds its returned values twice (onnxruntime's and the Go
	// copies): a pass's one sample gets half the budget.
	ps := passes(est, names, RunBudget/2)
	for k, pass := range ps {
		// Progress counts samples over all passes.
		report := func(done int) { progress.Report(ctx, "calibration", k*rows+done, len(ps)*rows) }
		if err := streamPass(ctx, m, src, rows, fixed, pass, maxBatch, est.workingSet(m, pass), visit, report); err != nil {
			return err
		}
	}
	return nil
}

func streamPass(ctx context.Context, m *graph.Model, src Batches, rows, fixed int, names []string, maxBatch int, ws workingSet, visit func(map[string]tensor.Dense, int, int) error, report func(done int)) error {
	// One thread, as quant's calibration always ran: runs are many and
	// small, and spinning worker threads cost more than they give on a
	// busy machine.
	r, err := newRunner(m, names, 1)
	if err != nil {
		return err
	}
	defer r.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	batch := 1 // the first run measures a sample's returned bytes
	if fixed > 0 {
		batch = fixed
	}
	for i := 0; i < rows; {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := min(i+batch, rows)
		in, err := src.Batch(i, j)
		if err != nil {
			return err
		}
		all, err := r.Run(ctx, in)
		if err != nil {
			return err
		}
		// Every value the run returned counts, the model's own outputs
		// too (a decoder's logits can outweigh what is captured).
		vals := make(map[string]tensor.Dense, len(names))
		var bytes int64
		for name, d := range all {
			if want[name] {
				vals[name] = d
			}
			bytes += int64(d.Len() * d.DType.Size())
		}
		all = nil
		if err := visit(vals, i, j-i); err != nil {
			return err
		}
		vals = nil
		if bytes >= gcAfter {
			runtime.GC()
		}
		if i == 0 && fixed == 0 {
			batch = max(1, min(maxBatch, int(RunBudget/max(ws.perSample(bytes), 1))))
		}
		i = j
		report(i)
	}
	return nil
}

// passes splits names into groups whose captured bytes per sample fit
// budget (a name larger than budget alone). Names whose shape is unknown
// count as the largest known one.
func passes(est sizes, names []string, budget int64) [][]string {
	var out [][]string
	var cur []string
	var sum int64
	for _, n := range names {
		b := est.of(n)
		if len(cur) > 0 && sum+b > budget {
			out, cur, sum = append(out, cur), nil, 0
		}
		cur, sum = append(cur, n), sum+b
	}
	return append(out, cur)
}
