package calib

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// Threads is the number of onnxruntime intra-op threads calibration
// sessions use.
var Threads = 2

// Runner is an onnxruntime session of a model with extra captured
// outputs.
type Runner struct {
	sess  *ort.Session
	names []string
}

// NewRunner builds a session of m that also outputs names (in order,
// after the model's own outputs).
func NewRunner(m *graph.Model, names []string) (*Runner, error) {
	return newRunner(m, names, Threads)
}

// SpillAbove is the size of a model's rewritten weights (on the heap,
// not mapped from a data file) from which a session spills them to a
// mapped file first (graph.SpillHeap): past it, marshalling them inline
// costs two more copies of them, and past 2 GiB cannot be done at all.
var SpillAbove int64 = 256 << 20

func newRunner(m *graph.Model, names []string, threads int) (*Runner, error) {
	// A spill that fails (no room in TMPDIR) leaves m as it was: its
	// weights then go inline, as they would below SpillAbove.
	_, _ = graph.SpillHeap(m, SpillAbove)
	// Weights still in their mapped data files are passed by reference:
	// onnxruntime reads them from disk, and a model past protobuf's 2 GiB
	// runs too.
	b, dir, err := graph.MarshalMapped(ort.CaptureModel(m.Proto, names))
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	// Basic optimisations only: with the extended ones, onnxruntime 1.30
	// fused a captured pruned Conv output into Conv+Add and returned it
	// with an unknown type.
	s, err := ort.NewSession(b, ort.Options{Threads: threads, OptLevel: ort.OptBasic, ExternalDataDir: dir})
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	return &Runner{sess: s, names: names}, nil
}

// Close ends the session.
func (r *Runner) Close() error { return r.sess.Close() }

// Run runs one batch and returns the captured values by name; the
// model's own outputs are returned too, under their names.
func (r *Runner) Run(ctx context.Context, in map[string]tensor.Dense) (map[string]tensor.Dense, error) {
	var want []string
	seen := map[string]bool{}
	for _, o := range r.sess.Outputs() {
		want, seen[o.Name] = append(want, o.Name), true
	}
	outs, err := r.sess.Run(ctx, in, want)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	vals := make(map[string]tensor.Dense, len(want))
	for i, name := range want {
		vals[name] = outs[i]
	}
	return vals, nil
}
