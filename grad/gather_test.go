package grad

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// TestRotaryHeadDimDecoderMatchesOnnxruntime: the trained decoder with
// query/key head_dim pruned by rotation pairs (prune/op_rotary.go: the
// rotary tables read through a Gather of the kept positions) computes
// onnxruntime's logits, so that --recover kd runs on such a model.
func TestRotaryHeadDimDecoderMatchesOnnxruntime(t *testing.T) {
	const batch = 2
	m, err := graph.Load(models + "llama_char_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{HeadDim: true})
	if err != nil {
		t.Fatal(err)
	}
	keep := map[int][]int{}
	for _, g := range an.Prunable() {
		if g.Kind != prune.KindHeadDim {
			continue
		}
		for i := range g.Size {
			if i%3 != 1 { // every third unit removed: pairs and value dims
				keep[g.ID] = append(keep[g.ID], i)
			}
		}
	}
	if len(keep) == 0 {
		t.Fatal("no prunable head_dim group")
	}
	if err := an.Apply(keep); err != nil {
		t.Fatal(err)
	}
	gathers := 0
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Gather" && n.Input(0) != "" && m.Graph.Producer(n.Input(0)) != nil && m.Graph.Producer(n.Input(0)).Op() == "Unsqueeze" {
			gathers++
		}
	}
	if gathers == 0 {
		t.Fatal("no rotary table is gathered: the query/key head_dim was not pruned")
	}
	path := filepath.Join(t.TempDir(), "pruned.onnx")
	if err := m.Save(path, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	pm, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, seq := testIDs(t, 0, batch)
	net, err := BuildShape(pm, []int64{batch, int64(seq)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := net.ForwardTokens(ids[:batch*seq])
	if err != nil {
		t.Fatal(err)
	}
	want := ortTokens(t, path, ids[:batch*seq], batch, seq)
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if d := maxAbsDiff(got, want); d > 1e-5*scale {
		t.Errorf("max |gorgonia − onnxruntime| = %g (logits up to %g)", d, scale)
	} else {
		t.Logf("%d rotary tables gathered; max |gorgonia − onnxruntime| = %.2g over %d logits up to %.3g", gathers, d, len(got), scale)
	}
}
