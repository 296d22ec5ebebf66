package prune_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// contribFixture is an entry of fixtures/contrib/index.json.
type contribFixture struct {
	fixture
	RefOutputs string `json:"ref_outputs"`
	// OptLevel "basic": the reference holds under onnxruntime's basic
	// graph optimisations (see gen/contrib.py).
	OptLevel string `json:"ort_opt_level"`
}

func contribFixtures(t *testing.T) []contribFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "contrib", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []contribFixture
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("fixtures/contrib/index.json lists no models")
	}
	for i := range list {
		list[i].Path = filepath.Join("contrib", list[i].Path)
		list[i].RefInputs = filepath.Join("contrib", list[i].RefInputs)
		list[i].RefOutputs = filepath.Join("contrib", list[i].RefOutputs)
	}
	return list
}

// TestContribLayers: on the onnxruntime-optimized layers of
// fixtures/contrib (com.microsoft Attention with packed QKV and with
// qkv_hidden_sizes, MultiHeadAttention, GroupQueryAttention with separate
// or packed QKV, with RotaryEmbedding or do_rotary, SkipLayerNormalization,
// (Skip)SimplifiedLayerNormalization, FastGelu/BiasGelu, int8 QDQ weights
// and MatMulNBits weights, and a two-layer int4 decoder whose KV cache is
// a graph output), each dense model matches its numpy reference
// in onnxruntime, and --heads 0.25, --mlp 0.25, both, and --kv-groups 0.5
// (GroupQueryAttention) write models that run with the dense output
// shape, fewer parameters, and the outputs of the dense model with the
// removed heads' Q/K/V columns and output-projection rows (and removed
// MLP channels) zeroed, within 1e-5.
func TestContribLayers(t *testing.T) {
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	kinds := func(r map[string]float64) prune.Settings { s := base; s.KindRatios = r; return s }
	type setting struct {
		name string
		opts prune.Options
		s    prune.Settings
	}
	settings := []setting{
		{"heads-0.25", prune.Options{}, kinds(map[string]float64{prune.KindHeads: 0.25})},
		{"mlp-0.25", prune.Options{}, kinds(map[string]float64{prune.KindMLP: 0.25})},
		{"heads+mlp-0.25", prune.Options{}, kinds(map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25})},
		{"params-0.3", prune.Options{}, func() prune.Settings { s := base; s.Target, s.Ratio = "params", 0.3; return s }()},
	}
	kv := kinds(map[string]float64{prune.KindKVGroups: 0.5})
	kv.KVGroups = true
	for _, f := range contribFixtures(t) {
		m := loadFixture(t, f.fixture)
		in := inputsOf(t, f.fixture)
		ro := ort.Options{}
		if f.OptLevel == "basic" {
			ro.OptLevel = ort.OptBasic
		}
		t.Run(f.Name+"/reference", func(t *testing.T) {
			ref, err := tensor.ReadNpz(filepath.Join(fixtureDir, f.RefOutputs))
			if err != nil {
				t.Fatal(err)
			}
			var want []tensor.Dense
			for _, o := range m.Graph.Outputs {
				want = append(want, ref[o.Name])
			}
			got := prunetest.RunWith(t, m, in, ro)
			if d := prunetest.MaxRelDiff(t, got, want); d > 1e-5 {
				t.Fatalf("dense model differs from its numpy reference by %.3g relative", d)
			}
		})
		all := settings
		switch {
		case strings.Contains(f.Name, "gqa"):
			all = append(all, setting{"kv-groups-0.5", prune.Options{KVGroups: true}, kv})
		case strings.Contains(f.Name, "decoder"):
			// Its KV cache is a graph input and output: KV groups prune
			// with the cache's head axis (checked below); with the
			// interface kept they freeze, naming the attention node and
			// the cache; --heads keeps every KV head and prunes.
			all = append(all, setting{"kv-groups-0.5", prune.Options{KVGroups: true}, kv})
			t.Run(f.Name+"/kv-groups-keep-interface", func(t *testing.T) {
				wantFrozen(t, kindGroups(t, prunetest.Clone(t, m), prune.Options{KVGroups: true, KeepInterface: true}, prune.KindKVGroups),
					"gqa: the present state", "present_key", "--keep-interface")
			})
		}
		for _, st := range all {
			t.Run(f.Name+"/"+st.name, func(t *testing.T) {
				if st.s.Target == "params" {
					// Lands within the tolerance or refuses: coarse groups
					// (MatMulNBits blocks) may not reach the request.
					an, err := prune.Analyze(prunetest.Clone(t, m), st.opts)
					if err != nil {
						t.Fatal(err)
					}
					sc, err := importance.New(st.s.Criterion, "l2", 0)
					if err != nil {
						t.Fatal(err)
					}
					scores, err := importance.ScoreAll(context.Background(), sc, an)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := an.Select(scores, st.s); errors.Is(err, prune.ErrTarget) {
						t.Logf("refused: %v", err)
						return
					}
				}
				r := prunetest.DeadOracleRuntime(t, m, in, st.opts, st.s, ro)
				if !r.Exact {
					t.Errorf("an inexact group was pruned: %v", r)
				}
				// The cost model counts as graph.Count does (MatMulNBits
				// B as K·N, quantization scales and zero points not).
				if r.Plan.Before.Params != r.ParamsBefore || r.Plan.After.Params != r.ParamsAfter {
					t.Errorf("plan params %d → %d, graph.Count %d → %d", r.Plan.Before.Params, r.Plan.After.Params, r.ParamsBefore, r.ParamsAfter)
				}
				if strings.Contains(f.Name, "decoder") && st.opts.KVGroups {
					// Every present cache lost the removed KV heads.
					for _, o := range m.Graph.Outputs {
						if strings.Contains(o.Name, "present") && len(r.Interface[o.Name]) != 1 {
							t.Errorf("cache output %s: kept positions %v, want its KV head axis", o.Name, r.Interface[o.Name])
						}
					}
				}
				t.Log(r)
			})
		}
	}
}
