package prune_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// transformerFixtures lists the transformer and decoder fixtures of the
// manifest, and ConvNeXt (a CNN with transformer-style MLP blocks).
func transformerFixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all []fixture
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, f := range all {
		if f.Kind == "transformer" || f.Kind == "decoder" || strings.HasPrefix(f.Name, "convnext") {
			out = append(out, f)
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d transformer fixtures in the manifest", len(out))
	}
	return out
}

// hasAttention: fixtures whose heads must be prunable.
func hasAttention(name string) bool {
	for _, p := range []string{"vit_", "gpt_", "transformer_encoder", "fmnist_vit", "char_gpt"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// killOutputs zeroes the producing slices (weight-out, bias, const) of
// the removed indices: for channels that only meet a contraction (Q·Kᵀ
// head_dim) this makes them contribute nothing.
func killOutputs(t *testing.T, m *graph.Model, grp *prune.Group, removed map[int]bool) {
	t.Helper()
	zeroMembers(t, m, grp, removed, func(kind string) bool {
		return kind == prune.KindWeightOut || kind == prune.KindBias || kind == prune.KindConst
	})
}

func hasKind(grp *prune.Group, kind string) bool {
	for _, m := range grp.Members {
		if m.Kind == kind {
			return true
		}
	}
	return false
}

// TestTransformerOracle: on every transformer fixture, heads and MLP
// width are prunable, and for every prunable group the channels to
// remove are made dead (the output-projection columns of the heads, fc2's
// columns of the MLP channels; the Q/K slices for head_dim groups that
// only meet Q·Kᵀ), then exactly those are removed: onnxruntime outputs
// must match the dead-channel model within 1e-5 of the largest output.
// Inexact (layer-norm) groups must prune into a model that runs with the
// same output shapes.
func TestTransformerOracle(t *testing.T) {
	for _, headDim := range []bool{false, true} {
		for _, f := range sweeptest.Pick(transformerFixtures(t)) {
			if headDim && !strings.HasSuffix(f.Name, "op17") {
				continue // the op13 twins differ only in layer-norm form
			}
			name := f.Name
			if headDim {
				name += "/head-dim"
			}
			t.Run(name, func(t *testing.T) {
				oracleTransformer(t, f, prune.Options{HeadDim: headDim})
			})
		}
	}
}

func oracleTransformer(t *testing.T, f fixture, opts prune.Options) {
	in := inputsOf(t, f)
	base := loadFixture(t, f)
	an, err := prune.Analyze(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, base, in)
	kinds := map[string]int{}
	for _, g := range an.Prunable() {
		kinds[g.Kind]++
	}
	headKind := prune.KindHeads
	if opts.HeadDim {
		headKind = prune.KindHeadDim
	}
	if kinds[prune.KindMLP] == 0 {
		t.Errorf("no prunable MLP group (prunable kinds %v)", kinds)
	}
	if hasAttention(f.Name) && kinds[headKind] == 0 {
		t.Errorf("no prunable %s group (prunable kinds %v)", headKind, kinds)
	}
	exact := 0
	for _, grp := range an.Prunable() {
		removed, kept := removedOf(grp.Size)
		if len(removed) == 0 {
			continue
		}
		dead := reload(t, base)
		switch {
		case grp.Kind == prune.KindHeadDim:
			// Q/K head_dim only meet Q·Kᵀ; V's reach the output
			// projection: both sides dead.
			killInputs(t, dead, grp, removed)
			killOutputs(t, dead, grp, removed)
		case hasKind(grp, prune.KindWeightIn):
			killInputs(t, dead, grp, removed)
		default:
			killOutputs(t, dead, grp, removed)
		}
		pruned := reload(t, dead)
		pa, err := prune.Analyze(pruned, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := pa.Apply(map[int][]int{grp.ID: kept}); err != nil {
			t.Fatalf("group %d (%s, %s): %v", grp.ID, grp.Name, grp.Kind, err)
		}
		got := run(t, reload(t, pruned), in)
		// A KV cache whose head_dim shrank is compared on the kept
		// positions (ioslice).
		io, err := ioslice.FromModel(pruned.Proto)
		if err != nil {
			t.Fatal(err)
		}
		if grp.Inexact != "" {
			maxRelDiff(t, got, prunetest.SliceOutputs(t, base, io, want)) // shapes only
			continue
		}
		ref := prunetest.SliceOutputs(t, base, io, run(t, dead, in))
		if d := maxRelDiff(t, got, ref); d > oracleTolerance {
			t.Errorf("group %d (%s, %s, %d of %d removed): outputs differ by %.3g relative", grp.ID, grp.Name, grp.Kind, len(removed), grp.Size, d)
		}
		exact++
	}
	var frozen []string
	for _, g := range an.Groups {
		if g.Frozen {
			frozen = append(frozen, g.Name+": "+g.Reason)
		}
	}
	t.Logf("prunable kinds %v, %d checked exactly, %d frozen", kinds, exact, len(frozen))
	for _, s := range frozen {
		t.Logf("  frozen %s", s)
	}
}

// TestTransformerPruneAndRun: every transformer fixture pruned by kind
// ratios and by the global ratio over parameters and MACs (embedding
// width included with PruneEmbed) runs in onnxruntime with the same
// output shapes; the plan's cost is a recount of the written file, and
// graph.Count sees the same reductions.
func TestTransformerPruneAndRun(t *testing.T) {
	settings := []prune.Settings{
		{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
			KindRatios: map[string]float64{prune.KindHeads: 0.5, prune.KindMLP: 0.5}},
		{Criterion: "random", Seed: 7, Scope: "local", Target: "channels", MaxLayerRatio: 0.8,
			KindRatios: map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25}},
		{Criterion: "magnitude", Scope: "global", Target: "params", Ratio: 0.3, MaxLayerRatio: 0.8},
		{Criterion: "magnitude", Scope: "global", Target: "macs", Ratio: 0.3, MaxLayerRatio: 0.8, PruneEmbed: true},
	}
	for _, f := range sweeptest.Pick(transformerFixtures(t)) {
		if !strings.HasSuffix(f.Name, "op17") {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			in := inputsOf(t, f)
			want := run(t, loadFixture(t, f), in)
			for i, s := range settings {
				m := loadFixture(t, f)
				an, p, err := tryPlan(t, m, s)
				if err != nil {
					t.Logf("setting %d: %v", i, err)
					if s.Target == "channels" {
						t.Fatal(err)
					}
					continue
				}
				if err := an.ApplyPlan(p); err != nil {
					t.Fatalf("setting %d: %v", i, err)
				}
				maxRelDiff(t, run(t, reload(t, m), in), want) // shapes
				re, err := prune.Analyze(reload(t, m), prune.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if c := re.Cost(); c != p.After {
					t.Errorf("setting %d: recounted cost %+v, plan says %+v", i, c, p.After)
				}
				c0, err := graph.Count(loadFixture(t, f))
				if err != nil {
					t.Fatal(err)
				}
				c1, err := graph.Count(reload(t, m))
				if err != nil {
					t.Fatal(err)
				}
				if c0.Params-c1.Params != p.Before.Params-p.After.Params {
					t.Errorf("setting %d: graph.Count sees params −%d, plan −%d", i, c0.Params-c1.Params, p.Before.Params-p.After.Params)
				}
				// MACs as graph.Count counts them (symbolic dims as 1, so a
				// folded batch·heads axis counts its heads): a MACs target
				// is met on the numbers the report prints.
				if len(c0.Uncounted) == 0 && (c0.MACs != p.Before.MACs || c1.MACs != p.After.MACs) {
					t.Errorf("setting %d: graph.Count sees MACs %d → %d, plan %d → %d", i, c0.MACs, c1.MACs, p.Before.MACs, p.After.MACs)
				}
				if p.After.Params >= p.Before.Params {
					t.Errorf("setting %d: nothing removed", i)
				}
				switch s.Target {
				case "params":
					checkTarget(t, "params", p.Before.Params, p.After.Params, s.Ratio)
				case "macs":
					checkTarget(t, "macs", p.Before.MACs, p.After.MACs, s.Ratio)
				}
				t.Logf("setting %d: params %d → %d, MACs %d → %d", i, p.Before.Params, p.After.Params, p.Before.MACs, p.After.MACs)
			}
		})
	}
}
