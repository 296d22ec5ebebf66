package prune_test

import (
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestDeadHeadOracle: on the exporter graphs (Hugging Face Llama with
// GQA, RoPE and computed repeat_kv shapes; BERT with computed Reshape
// targets and deduplicated zero biases) and on every transformer fixture,
// --heads 0.25, --mlp 0.25, both, --kv-groups 0.5 (GQA) and --ratio 0.3
// --target params write models that run in onnxruntime with the dense
// output shapes, fewer parameters, and the outputs of the dense model in
// which the removed heads' Q/K/V rows and output-projection columns (and
// the removed MLP channels' fc1 rows and fc2 columns) are zeroed.
func TestDeadHeadOracle(t *testing.T) {
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	with := func(f func(*prune.Settings)) prune.Settings {
		s := base
		f(&s)
		return s
	}
	type setting struct {
		name string
		opts prune.Options
		s    prune.Settings
	}
	settings := []setting{
		{"heads-0.25", prune.Options{}, with(func(s *prune.Settings) { s.KindRatios = map[string]float64{prune.KindHeads: 0.25} })},
		{"mlp-0.25", prune.Options{}, with(func(s *prune.Settings) { s.KindRatios = map[string]float64{prune.KindMLP: 0.25} })},
		{"heads+mlp-0.25", prune.Options{}, with(func(s *prune.Settings) {
			s.KindRatios = map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25}
		})},
		{"params-0.3", prune.Options{}, with(func(s *prune.Settings) { s.Target, s.Ratio = "params", 0.3 })},
		{"kv-groups-0.5", prune.Options{KVGroups: true}, with(func(s *prune.Settings) {
			s.KVGroups = true
			s.KindRatios = map[string]float64{prune.KindKVGroups: 0.5}
		})},
	}
	names := []string{"hf_llama_tiny", "hf_bert_tiny", "vit_nano_op17", "swin_nano_op17", "gpt_nano_op17",
		"char_gpt_op17", "transformer_encoder_op17", "fmnist_vit_op17",
		// Hugging Face / timm forms (fixtures/gen/hf.py): opset 14 for the
		// decomposed norms, 17 for LayerNormalization.
		"llama_char_op14", "llama_nano_op17", "qwen2_nano_op14", "phi3_nano_op17", "gpt2_nano_op14",
		"bert_nano_op17", "deit_nano_op14"}
	byName := map[string]fixture{}
	for _, f := range transformerFixtures(t) {
		byName[f.Name] = f
	}
	for _, name := range sweeptest.Pick(names) {
		f, ok := byName[name]
		if !ok {
			t.Fatalf("fixture %s not in the manifest", name)
		}
		m := loadFixture(t, f)
		in := inputsOf(t, f)
		for _, st := range settings {
			gqa := strings.HasPrefix(name, "hf_llama") || strings.HasPrefix(name, "llama_") || strings.HasPrefix(name, "qwen2_")
			if st.opts.KVGroups && !gqa {
				continue // --kv-groups applies to grouped-query attention
			}
			t.Run(name+"/"+st.name, func(t *testing.T) {
				if pending, ok := oraclePending[name+"/"+st.name]; ok {
					expectAllFrozen(t, m, st.opts, pending)
					return
				}
				r := prunetest.DeadOracle(t, m, in, st.opts, st.s)
				if !r.Exact {
					t.Errorf("an inexact group was pruned: %v", r)
				}
				t.Log(r)
			})
		}
	}
}

// oraclePending lists the oracle cases whose groups all freeze today, by
// fixture/setting, with the kind that freezes and the missing capability.
// A listed case must still have no prunable group of that kind, so the
// entry goes once the analysis handles it.
var oraclePending = map[string]struct{ kind, why string }{}

// expectAllFrozen checks that no group of the pending kind is prunable
// and logs the freeze reasons.
func expectAllFrozen(t *testing.T, m *graph.Model, opts prune.Options, pending struct{ kind, why string }) {
	t.Helper()
	an, err := prune.Analyze(prunetest.Clone(t, m), opts)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, g := range an.Groups {
		if g.Kind != pending.kind {
			continue
		}
		seen++
		if !g.Frozen {
			t.Errorf("group %s (%s) is prunable now: remove the case from oraclePending (%s)", g.Name, g.Kind, pending.why)
			continue
		}
		t.Logf("frozen %s: %s", g.Name, g.Reason)
	}
	if seen == 0 {
		t.Errorf("no %s group found: the case in oraclePending no longer describes the model", pending.kind)
	}
	t.Logf("expected failure, missing capability: %s", pending.why)
}
