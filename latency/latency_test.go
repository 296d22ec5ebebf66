package latency_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/latency"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// measureOpts trims the grid and the runs in -short: the test is about
// the table and the selection, not about precise figures.
func measureOpts(dir string) latency.Options {
	o := latency.Options{CacheDir: dir}
	if testing.Short() {
		o.Fractions, o.Warmup, o.Runs = []float64{1, 0.5}, 1, 3
	}
	return o
}

// TestLatencyTargetResNet18: on the resnet18_w16 fixture (torchvision
// BasicBlocks, 16-128 channels), the table measures every convolution
// and the classifier at reduced widths in onnxruntime, a second build
// reads everything from the cache, halving every layer's widths
// estimates well under the full layers' latency, and a latency target of
// 40% removed (exact counts: this model's groups of 16 rounded to 8 are
// too coarse to land within 2%) selects a plan whose estimate lands there, which prunes
// into a model onnxruntime runs with the dense output shape.
func TestLatencyTargetResNet18(t *testing.T) {
	path := filepath.Join("..", "fixtures", "models", "resnet18_w16_op13.onnx")
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	lm, err := latency.Build(ctx, m, an, measureOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	layers := an.Layers()
	// Every layer at full size and at least one more width (repeated
	// shapes come from the cache), the tiny model and the whole model.
	if lm.Measured == 0 || lm.Measured+lm.Cached < 2*len(layers)+2 || lm.Whole <= 0 {
		t.Fatalf("%d measured and %d cached for %d layers, whole model %.0f µs", lm.Measured, lm.Cached, len(layers), lm.Whole)
	}
	again, err := latency.Build(ctx, m, an, measureOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	if again.Measured != 0 || again.Cached != lm.Measured+lm.Cached {
		t.Errorf("second build: %d measured, %d cached; want 0 and %d (all from the cache)", again.Measured, again.Cached, lm.Measured+lm.Cached)
	}
	var full, half float64
	for i, l := range layers {
		full += lm.Layer(i, l.Dims)
		d := append([]int64{}, l.Dims...)
		d[0] = max(d[0]/2, 1)
		if len(d) > 1 && d[1] > 3 {
			d[1] /= 2
		}
		half += lm.Layer(i, d)
	}
	t.Logf("%d layers: %.0f µs at full width, %.0f µs at half, rest %.0f µs, whole %.0f µs", len(layers), full, half, lm.Rest(), lm.Whole)
	if !(half < 0.8*full) {
		t.Errorf("layers at half width estimated at %.0f µs of %.0f at full", half, full)
	}

	an.SetLatency(lm)
	sc, err := importance.New("magnitude", "l2", 0)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := importance.ScoreAll(context.Background(), sc, an)
	if err != nil {
		t.Fatal(err)
	}
	s := prune.Settings{Criterion: "magnitude", Target: "latency", Ratio: 0.4, MaxLayerRatio: 0.8}
	p, err := an.Select(scores, s)
	if err != nil {
		t.Fatal(err)
	}
	got := 1 - p.After.LatencyUs/p.Before.LatencyUs
	t.Logf("latency estimate %.0f → %.0f µs (−%.1f%%), MACs %d → %d", p.Before.LatencyUs, p.After.LatencyUs, 100*got, p.Before.MACs, p.After.MACs)
	if math.Abs(got-0.4) > 0.02 || p.After.MACs >= p.Before.MACs {
		t.Errorf("latency target 40%%: estimate removes %.1f%%, MACs %d → %d", 100*got, p.Before.MACs, p.After.MACs)
	}
	if err := an.ApplyPlan(p); err != nil {
		t.Fatal(err)
	}
	pruned := prunetest.Clone(t, m)
	in, err := tensor.Zeros(tensor.Float32, []int64{1, 3, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	out := prunetest.Run(t, pruned, map[string]tensor.Dense{"input": in})
	if len(out) != 1 || out[0].Shape[1] != 10 {
		t.Errorf("pruned model gave %d outputs (%v), want one of 10 classes", len(out), out)
	}
}

// TestSelectLatencyNeedsModel: target latency without a latency model is
// an invalid option, not a silent MACs target.
func TestSelectLatencyNeedsModel(t *testing.T) {
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "resnet18_w16_op13.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := importance.New("magnitude", "l2", 0)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := importance.ScoreAll(context.Background(), sc, an)
	if err == nil {
		_, err = an.Select(scores, prune.Settings{Criterion: "magnitude", Target: "latency", Ratio: 0.3, MaxLayerRatio: 0.8})
	}
	if err == nil {
		t.Fatal("target latency without a latency model: no error")
	}
}

// TestCompare: a model timed against itself run by run, at batch 1 and
// 8, gives two positive least CPU times and their ratio; bad run counts
// are refused, and batch 8 of a model whose batch axis is fixed is
// ErrStaticBatch. (No bound on the ratio: the machine may be shared.)
func TestCompare(t *testing.T) {
	path := filepath.Join("..", "fixtures", "models", "resnet18_w16_op13.onnx")
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int64{1, 8} {
		c, err := latency.Compare(context.Background(), b, b, latency.CompareOptions{Batch: batch, Warmup: 1, Runs: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !(c.DenseUs > 0 && c.PrunedUs > 0 && c.Ratio > 0) || c.Runs != 3 || c.Batch != batch || math.IsInf(c.Ratio, 0) {
			t.Errorf("compare at batch %d: %+v", batch, c)
		}
	}
	if _, err := latency.Compare(context.Background(), b, b, latency.CompareOptions{Batch: 1, Warmup: 1}); err == nil {
		t.Error("0 runs accepted")
	}
	static, err := graph.Load(filepath.Join("..", "fixtures", "models", "hf_llama_tiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := static.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := latency.Compare(context.Background(), sb, sb, latency.CompareOptions{Batch: 8, Warmup: 1, Runs: 3}); !errors.Is(err, latency.ErrStaticBatch) {
		t.Errorf("batch 8 of a model with a fixed batch axis: %v", err)
	}
}

// TestCompareInputShapes: the whole models run at the sizes --input-shape
// gave the latency table, not at check.DefaultDim: a model with symbolic
// height and width is timed at 28×28 when asked (16×16 by default), at
// every batch, and sizes that do not fit the input are refused.
func TestCompareInputShapes(t *testing.T) {
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "fmnist_opnet_const_op11.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	run := func(o latency.CompareOptions) []int64 {
		t.Helper()
		o.Warmup, o.Runs = 0, 1
		c, err := latency.Compare(context.Background(), b, b, o)
		if err != nil {
			t.Fatal(err)
		}
		return c.Inputs["input"]
	}
	fixed := map[string][]int64{"input": {1, 1, 28, 28}}
	for _, tc := range []struct {
		o    latency.CompareOptions
		want []int64
	}{
		{latency.CompareOptions{Batch: 1}, []int64{1, 1, check.DefaultDim, check.DefaultDim}},
		{latency.CompareOptions{Batch: 1, Shapes: fixed}, []int64{1, 1, 28, 28}},
		{latency.CompareOptions{Batch: 8, Shapes: fixed}, []int64{8, 1, 28, 28}},
	} {
		if got := run(tc.o); !slices.Equal(got, tc.want) {
			t.Errorf("batch %d, shapes %v: ran at %v, want %v", tc.o.Batch, tc.o.Shapes, got, tc.want)
		}
	}
	bad := map[string][]int64{"input": {1, 28, 28}}
	if _, err := latency.Compare(context.Background(), b, b, latency.CompareOptions{Batch: 1, Runs: 1, Shapes: bad}); err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("rank-3 sizes for a rank-4 input: %v", err)
	}
}
