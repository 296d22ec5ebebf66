package prune_test

import (
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// TestGQAComputedRepeat: Llama- and Qwen2-style decoders from the
// TorchScript exporter (fixtures/gen/gqa_tiny.py) whose repeat_kv reads
// batch, KV heads, sequence and head_dim from Shape of the keys at run
// time (Expand to Concat of Gathers, a Shape of that shape for the −1
// test, Reshape to a computed target), with RoPE and, for Qwen2, Q/K/V
// biases and a tied LM head. Query heads (--heads), whole KV groups
// (--kv-groups) and the MLP width prune and match the dead-head oracle.
func TestGQAComputedRepeat(t *testing.T) {
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	heads := base
	heads.KindRatios = map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25}
	kv := base
	kv.KVGroups = true
	kv.KindRatios = map[string]float64{prune.KindKVGroups: 0.5}
	params := base
	params.Target, params.Ratio = "params", 0.3
	for _, name := range []string{"gqa_llama", "gqa_qwen2"} {
		path := filepath.Join("testdata", name+"_op17")
		m, err := graph.Load(path + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		in, err := tensor.ReadNpz(path + ".inputs.npz")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			opts prune.Options
			s    prune.Settings
		}{{"heads+mlp", prune.Options{}, heads}, {"kv-groups", prune.Options{KVGroups: true}, kv}, {"params", prune.Options{}, params}} {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				r := prunetest.DeadOracle(t, m, in, c.opts, c.s)
				if !r.Exact {
					t.Errorf("an inexact group was pruned: %v", r)
				}
				t.Log(r)
			})
		}
	}
}
