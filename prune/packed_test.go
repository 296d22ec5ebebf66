package prune_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// TestPackedProjections: attention blocks whose Q/K/V (and SwiGLU
// gate/up) come out of one packed projection prune consistently across
// the packed parts (fixtures/gen/packed_attention.py): timm's
// reshape(B, N, 3, H, D) + unbind with the scale computed from the head
// size, Hugging Face GPT-2's Conv1D (a Gemm on [B·S, C] viewed back to
// [B, S, 3C] by a shape computed from Shape) + Split, and Phi-3's sliced
// qkv_proj and chunked gate_up_proj. Heads and MLP width are prunable and
// --heads/--mlp 0.25 and --ratio 0.3 --target params match the dead-head
// oracle.
func TestPackedProjections(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 2*7*64)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xt, err := tensor.New([]int64{2, 7, 64}, x)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]tensor.Dense{"x": xt}
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	for _, name := range []string{"timm", "gpt2", "phi3"} {
		m, err := graph.Load(filepath.Join("testdata", "packed_"+name+"_op17.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(prunetest.Clone(t, m), prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, g := range an.Prunable() {
			kinds[g.Kind]++
		}
		if kinds[prune.KindHeads] != 1 || kinds[prune.KindMLP] != 1 {
			t.Errorf("%s: prunable kinds %v, want one heads and one mlp group", name, kinds)
		}
		both := base
		both.KindRatios = map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25}
		params := base
		params.Target, params.Ratio = "params", 0.3
		for _, s := range []prune.Settings{both, params} {
			t.Run(name+"/"+s.Target, func(t *testing.T) {
				t.Log(prunetest.DeadOracle(t, m, in, prune.Options{}, s))
			})
		}
	}
}
