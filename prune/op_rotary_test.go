package prune_test

import (
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestRotaryHeadDimOracle: with --head-dim, the query/key head_dim of
// the decoders with rotary embeddings prunes (the trained char Llama;
// the Llama, Qwen2 and Phi-3 forms of fixtures/gen/hf.py, cos/sin
// computed in the graph or sliced from a cached table and gathered by
// position; the torch-2 dynamo export of a Hugging Face Llama). Each
// query/key unit is a rotation pair, positions d and d + D/2 of the head,
// and the pruned models match in onnxruntime the dense model in which the
// removed pairs' query and key rows (and the removed value dims' rows and
// output-projection columns) are zeroed.
func TestRotaryHeadDimOracle(t *testing.T) {
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	hd := base
	hd.KindRatios = map[string]float64{prune.KindHeadDim: 0.5}
	params := base
	params.Target, params.Ratio, params.HeadDim = "params", 0.3, true
	opts := prune.Options{HeadDim: true}
	byName := map[string]fixture{}
	for _, f := range transformerFixtures(t) {
		byName[f.Name] = f
	}
	names := []string{"llama_char_op17", "llama_char_op14", "llama_nano_op17", "qwen2_nano_op17", "qwen2_nano_op14",
		"phi3_nano_op17", "hf_llama_tiny"}
	for _, name := range sweeptest.Pick(names) {
		f, ok := byName[name]
		if !ok {
			t.Fatalf("fixture %s not in the manifest", name)
		}
		m := loadFixture(t, f)
		in := inputsOf(t, f)
		an, err := prune.Analyze(prunetest.Clone(t, m), opts)
		if err != nil {
			t.Fatal(err)
		}
		qk := rotaryGroups(t, an)
		if len(qk) == 0 {
			for _, g := range an.Groups {
				t.Logf("group %d %s %s frozen=%v %s", g.ID, g.Kind, g.Name, g.Frozen, g.Reason)
			}
			t.Fatalf("%s: no prunable query/key head_dim group", name)
		}
		for _, s := range []struct {
			name string
			s    prune.Settings
		}{{"head-dim-0.5", hd}, {"params-0.3", params}} {
			t.Run(name+"/"+s.name, func(t *testing.T) {
				r := prunetest.DeadOracle(t, m, in, opts, s.s)
				if !r.Exact {
					t.Errorf("an inexact group was pruned: %v", r)
				}
				keep := r.Plan.Keep()
				cut := 0
				for gid, size := range qk {
					if k, ok := keep[gid]; ok && len(k) < size {
						cut++
					}
				}
				if cut == 0 {
					t.Errorf("no query/key head_dim group lost a pair: the oracle proves nothing about rotary")
				}
				t.Logf("%v; %d of %d query/key groups cut", r, cut, len(qk))
			})
		}
	}
}

// rotaryGroups returns the prunable head_dim groups holding a query or
// key projection (by size), after checking that each of their units is a
// rotation pair: two positions of the projection's output, D/2 apart in
// the same head.
func rotaryGroups(t *testing.T, an *prune.Analysis) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, g := range an.Prunable() {
		if g.Kind != prune.KindHeadDim {
			continue
		}
		for _, mem := range g.Members {
			if mem.Kind != prune.KindWeightOut || !(strings.Contains(mem.Node, "q_proj") || strings.Contains(mem.Node, "qkv_proj") ||
				mem.Node == "node_linear" || mem.Node == "node_linear_7") {
				continue
			}
			pos := map[int][]int{}
			for p, i := range mem.Map {
				if i >= 0 {
					pos[i] = append(pos[i], p)
				}
			}
			for i, ps := range pos {
				// heads × 2: every head holds the pair once.
				if len(ps)%2 != 0 {
					t.Fatalf("group %d (%s): unit %d has %d positions in %s", g.ID, g.Name, i, len(ps), mem.Tensor)
				}
				d := 2 * (ps[1] - ps[0])
				for k := 0; k+1 < len(ps); k += 2 {
					if ps[k+1]-ps[k] != d/2 || ps[k]%d >= d/2 {
						t.Fatalf("group %d (%s): unit %d positions %v of %s are not rotation pairs", g.ID, g.Name, i, ps, mem.Tensor)
					}
				}
			}
			out[g.ID] = g.Size
			break
		}
	}
	return out
}
