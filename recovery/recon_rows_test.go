package recovery

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
)

// prunedFixture loads a fixture and a copy with about half its
// parameters removed (the last channels of every group), and the plan.
func prunedFixture(t *testing.T, name string) (dense, m *graph.Model, plan *prune.Plan) {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	dense, err := graph.Load("../fixtures/models/" + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err = graph.FromProto(proto.Clone(dense.Proto).(*onnx.ModelProto))
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scores := map[int][]float64{}
	for _, g := range an.Prunable() {
		s := make([]float64, g.Size)
		for i := range s {
			s[i] = float64(g.Size - i)
		}
		scores[g.ID] = s
	}
	plan, err = an.Select(scores, prune.Settings{Criterion: "magnitude", Target: "params", Ratio: 0.5, MaxLayerRatio: 0.8, Scope: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if err := an.ApplyPlan(plan); err != nil {
		t.Fatal(err)
	}
	return dense, m, plan
}

// Reconstruction by segments (one forward pass of each model) refits
// the same weights as whole-model runs per layer, on real models of
// every kind the pruner meets: a DenseNet (nested concats), a MobileNet
// (depthwise), a ViT (attention, LayerNorm) and a decoder (token ids,
// rotary, grouped-query attention).
func TestSegmentReconstructionMatchesWholeRuns(t *testing.T) {
	cases := []struct{ model, data string }{
		{"fmnist_densenet_op17.onnx", "fmnist_calib_x.npy"},
		{"fmnist_mobilenet_op17.onnx", "fmnist_calib_x.npy"},
		{"fmnist_vit_op17.onnx", "fmnist_calib_x.npy"},
		{"llama_char_op17.onnx", "llama_calib_ids.npy"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			dense, m, plan := prunedFixture(t, c.model)
			src, err := calib.Open("../fixtures/data/"+c.data, m, 64)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			whole, notes := reconstructBothWays(t, dense, m, plan, src, "segment by segment")
			worst, name := 0.0, ""
			refitted := 0
			eachFloatTensor(t, m, whole, func(tensor string, a, b []float64) {
				d, scale := 0.0, 0.0
				for i := range a {
					d = max(d, math.Abs(a[i]-b[i]))
					scale = max(scale, math.Abs(b[i]))
				}
				if d > 0 {
					refitted++
				}
				if r := d / max(scale, 1e-12); r > worst {
					worst, name = r, tensor
				}
			})
			t.Logf("%s: %d tensors differ, worst %s by %.2e of its largest value; notes %q", c.model, refitted, name, worst, notes)
			if worst > 1e-3 {
				t.Errorf("%s differs from the whole-run refit by %.2e of its largest value", name, worst)
			}
		})
	}
}

// When the values the segments keep outgrow FrontierBudget, the layers
// left are refitted by whole-model runs, the notes say from which
// layer, and the refits are those of whole runs throughout.
func TestSegmentReconstructionFallsBackPastFrontierBudget(t *testing.T) {
	defer func(b int64) { FrontierBudget = b }(FrontierBudget)
	dense, m, plan := prunedFixture(t, "fmnist_densenet_op17.onnx")
	src, err := calib.Open("../fixtures/data/fmnist_calib_x.npy", m, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	FrontierBudget = 1
	whole, notes := reconstructBothWays(t, dense, m, plan, src, "whole-model runs from ")
	eachFloatTensor(t, m, whole, func(tensor string, a, b []float64) {
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-4*max(math.Abs(b[i]), 1) {
				t.Fatalf("%s[%d]: %g after the fall-back, %g by whole runs", tensor, i, a[i], b[i])
			}
		}
	})
	t.Logf("notes %q", notes)
}

// reconstructBothWays reconstructs pruned model m by segments, checks
// that a note on how the models ran contains how, and reconstructs a
// copy of m as it was by whole-model runs.
func reconstructBothWays(t *testing.T, dense, m *graph.Model, plan *prune.Plan, src *calib.Source, how string) (whole *graph.Model, notes []string) {
	t.Helper()
	defer func(on bool) { segmentRecon = on }(segmentRecon)
	whole, err := graph.FromProto(proto.Clone(m.Proto).(*onnx.ModelProto))
	if err != nil {
		t.Fatal(err)
	}
	segmentRecon = true
	if notes, err = Reconstruct(context.Background(), m, dense, plan, src, 16); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, how) }) {
		t.Fatalf("notes %q: none says %q", notes, how)
	}
	segmentRecon = false
	if _, err := Reconstruct(context.Background(), whole, dense, plan, src, 16); err != nil {
		t.Fatal(err)
	}
	return whole, notes
}

// eachFloatTensor calls f with the values of every float initializer of
// m and of its namesake in other; every initializer of m must be in
// other.
func eachFloatTensor(t *testing.T, m, other *graph.Model, f func(name string, a, b []float64)) {
	t.Helper()
	for _, ts := range m.Proto.Graph.Initializer {
		if _, ok := other.Graph.Constant(ts.GetName()); !ok {
			t.Fatalf("%s: only in one of the two models", ts.GetName())
		}
		if ts.GetDataType() != int32(onnx.TensorProto_FLOAT) {
			continue
		}
		a, err := m.Graph.ConstantFloat64s(ts.GetName())
		if err != nil {
			continue
		}
		b, err := other.Graph.ConstantFloat64s(ts.GetName())
		if err != nil {
			t.Fatalf("%s: %v", ts.GetName(), err)
		}
		f(ts.GetName(), a, b)
	}
}
