package calib

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// Captured value by value in graph order, Segments returns exactly the
// values one whole-model Stream returns, runs every node it needs once,
// and keeps only values a node not yet run reads.
func TestSegmentsMatchStream(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range m.Graph.Nodes {
		if (n.Op() == "Conv" || n.Op() == "Gemm") && !slices.Contains(names, n.Input(0)) {
			names = append(names, n.Input(0))
		}
	}
	const samples = 12
	src := noiseImages(t, rand.New(rand.NewPCG(5, 6)), samples)
	collect := func(into map[string][]float32) func(map[string]tensor.Dense, int, int) error {
		return func(vals map[string]tensor.Dense, first, rows int) error {
			for name, d := range vals {
				v, err := d.Float32s()
				if err != nil {
					return err
				}
				if len(into[name]) != first*len(v)/rows {
					t.Errorf("%s: batch at sample %d out of order", name, first)
				}
				into[name] = append(into[name], v...)
			}
			return nil
		}
	}
	whole := map[string][]float32{}
	if err := Stream(context.Background(), m, src, names, 4, collect(whole)); err != nil {
		t.Fatal(err)
	}
	seg, err := NewSegments(m, src, 4)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]float32{}
	for _, name := range names {
		if err := seg.Capture(context.Background(), []string{name}, collect(parts)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		if len(whole[name]) == 0 || !slices.Equal(whole[name], parts[name]) {
			t.Errorf("%s: %d values from segments differ from the whole run's %d", name, len(parts[name]), len(whole[name]))
		}
	}
	ran := 0
	for _, n := range m.Graph.Nodes {
		if seg.Ran(n) {
			ran++
		}
	}
	if seg.Nodes != ran {
		t.Errorf("%d node runs for %d nodes run: some ran twice", seg.Nodes, ran)
	}
	t.Logf("%d captures, %d sessions, %d of %d nodes run, %d bytes kept at the end", len(names), seg.Runs, ran, len(m.Graph.Nodes), seg.KeptBytes())
	// The last capture's input is kept (its reader has not run); nothing
	// else is.
	if got, want := seg.KeptBytes(), int64(samples*len(parts[names[len(names)-1]])/samples*4); got != want {
		t.Errorf("%d bytes kept at the end, want %d (the last input alone)", got, want)
	}
}

// A first capture whose kept values pass the budget fails with
// ErrSegments, for the caller to run the whole model instead.
func TestSegmentsBudget(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.New([]int64{4, 1, 28, 28}, make([]float32, 4*28*28))
	if err != nil {
		t.Fatal(err)
	}
	old := SegmentBudget
	SegmentBudget = 1
	defer func() { SegmentBudget = old }()
	seg, err := NewSegments(m, memBatches{"input": in}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var conv string
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Conv" {
			conv = n.Output(0)
			break
		}
	}
	err = seg.Capture(context.Background(), []string{conv}, func(map[string]tensor.Dense, int, int) error { return nil })
	if !errors.Is(err, ErrSegments) {
		t.Fatalf("got %v, want ErrSegments", err)
	}
}
