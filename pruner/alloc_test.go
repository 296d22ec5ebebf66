package pruner

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// pruneFixture prunes a fresh copy of a trained fixture with cfg (its
// calibration set filled in) and returns the test accuracy, the fraction
// of parameters removed and the outcome.
func pruneFixture(t *testing.T, model string, cfg Config) (acc, removed float64, out *Outcome) {
	t.Helper()
	m, err := graph.Load(fixtures + "models/" + model)
	if err != nil {
		t.Fatal(err)
	}
	before, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Calib = fixtures + "data/fmnist_calib_x.npy"
	if out, err = Run(context.Background(), m, an, nil, cfg); err != nil {
		t.Fatalf("%s: %v", model, err)
	}
	after, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	return testAccuracy(t, m), 1 - float64(after.Params)/float64(before.Params), out
}

// On the trained ViT, --heads 0.5 --mlp 0.75 with --allocate sensitivity
// removes the same parameters as the kind ratios alone, shared across
// heads and MLP width by measured sensitivity: the per-layer ratios
// leave the fixed ones and the accuracy is at least as good (measured:
// 79.3% against 77.8%, dense 88.6%).
func TestSensitivityAllocationSharesKindBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("an accuracy study on a trained model (several prunes with calibration): run without -short")
	}
	s := prune.Settings{Criterion: "obs", Scope: "global", Target: "channels", MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1,
		KindRatios: map[string]float64{prune.KindHeads: 0.5, prune.KindMLP: 0.75}}
	kAcc, kRm, _ := pruneFixture(t, "fmnist_vit_op17.onnx", Config{Settings: s, Reconstruct: true})
	sAcc, sRm, out := pruneFixture(t, "fmnist_vit_op17.onnx", Config{Settings: s, Reconstruct: true, Allocate: "sensitivity"})
	t.Logf("kind ratios: %.1f%% removed, accuracy %.3f; shared by sensitivity: %.1f%% removed, accuracy %.3f", 100*kRm, kAcc, 100*sRm, sAcc)
	if d := sRm - kRm; d < -0.02 || d > 0.02 {
		t.Fatalf("sensitivity removed %.3f of the params, the kind ratios %.3f", sRm, kRm)
	}
	if sAcc < kAcc {
		t.Errorf("shared budget %.3f below the fixed kind ratios %.3f", sAcc, kAcc)
	}
	fixed := map[string]float64{prune.KindHeads: 0.5, prune.KindMLP: 0.75}
	moved := 0
	for _, g := range out.Plan.Groups {
		if r, ok := fixed[g.Kind]; ok && !g.Frozen {
			if got := 1 - float64(len(g.Kept))/float64(g.Size); got < r-0.01 || got > r+0.01 {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Errorf("every group kept its kind ratio: nothing was shared")
	}
}

// On the trained ViT at 70% of the parameters removed, fitting each
// block's attention output and fc2 projections to the dense block
// output (ReconstructBlocks) beats layer-wise reconstruction at the same
// plan (measured: 71.8% against 67.9%, dense 88.6%).
func TestBlockReconstructionViT(t *testing.T) {
	if testing.Short() {
		t.Skip("an accuracy study on a trained model (several prunes with calibration): run without -short")
	}
	s := prune.Settings{Criterion: "obs", Scope: "global", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1}
	lAcc, lRm, _ := pruneFixture(t, "fmnist_vit_op17.onnx", Config{Settings: s, Reconstruct: true, Allocate: "sensitivity"})
	bAcc, bRm, out := pruneFixture(t, "fmnist_vit_op17.onnx", Config{Settings: s, Reconstruct: true, ReconstructBlocks: true, Allocate: "sensitivity"})
	t.Logf("layer-wise: %.1f%% removed, accuracy %.3f; block: %.1f%% removed, accuracy %.3f; notes %q", 100*lRm, lAcc, 100*bRm, bAcc, out.Notes)
	if lRm != bRm {
		t.Fatalf("different plans: %.4f and %.4f removed", lRm, bRm)
	}
	if bAcc < lAcc+0.02 {
		t.Errorf("block reconstruction %.3f does not beat layer-wise %.3f by 2 points", bAcc, lAcc)
	}
	if out.Plan.Settings.Options == nil || !out.Plan.Settings.Options.ReconstructBlocks {
		t.Errorf("the plan does not record block reconstruction")
	}
}

// On the trained GQA decoder, --kv-groups 0.5 --mlp 0.5 with
// --allocate sensitivity shares one params budget across KV groups and
// MLP widths: a --ratio with --target params is that budget (it was
// read as "0% more than the kind ratios" and refused), and without a
// --ratio the kind ratios' own reduction is. At 63% of the parameters
// kept, with exact counts as in docs/RESULTS.md's LLM table, the
// perplexity stays within 8% of dense, as with heads and MLP.
func TestSensitivityBudgetWithKVGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("an accuracy study on a trained model (several prunes with calibration): run without -short")
	}
	dense, err := os.ReadFile(fixtures + "models/llama_char_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	run := func(ratio float64, dry bool) (*Outcome, *graph.Model) {
		m, err := graph.Parse(dense)
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(m, prune.Options{KVGroups: true})
		if err != nil {
			t.Fatal(err)
		}
		s := prune.Settings{Criterion: "obs", Scope: "global", Target: "params", Ratio: ratio, MaxLayerRatio: 0.8, KVGroups: true,
			KindRatios: map[string]float64{prune.KindKVGroups: 0.5, prune.KindMLP: 0.5}}
		out, err := Run(context.Background(), m, an, nil, Config{Settings: s, Norm: "l2", Calib: fixtures + "data/llama_calib_ids.npy",
			Allocate: "sensitivity", Reconstruct: !dry, DryRun: dry,
			// One-shot order: the greedy one gave 6.177 here, above the
			// 8% bar (docs/RESULTS.md, "Greedy OBS order").
			OBSOrder: importance.OBSOneShot})
		if err != nil {
			t.Fatalf("ratio %v: %v", ratio, err)
		}
		return out, m
	}
	removed := func(p *prune.Plan) float64 { return 1 - float64(p.After.Params)/float64(p.Before.Params) }

	kinds, _ := run(0, true)
	if got := removed(kinds.Plan); got < 0.3 {
		t.Errorf("no --ratio: %.3f of the params removed, want the kind ratios' own reduction (about 0.46)", got)
	}
	out, m := run(0.37, false)
	if got := removed(out.Plan); math.Abs(got-0.37) > 0.02 {
		t.Errorf("--ratio 0.37: %.3f of the params removed", got)
	}
	kv := 0
	for _, g := range out.Plan.Groups {
		if g.Kind == prune.KindKVGroups && !g.Frozen {
			kv++
		}
	}
	if kv == 0 {
		t.Fatalf("no KV group was offered to the allocation")
	}
	ref, err := graph.Parse(dense)
	if err != nil {
		t.Fatal(err)
	}
	densePPL, ppl := perplexity(t, dense, ref), perplexity(t, dense, m)
	t.Logf("63%% kept: perplexity %.3f, dense %.3f; %d KV groups offered", ppl, densePPL, kv)
	if ppl > 1.08*densePPL {
		t.Errorf("perplexity %.3f at 63%% of the params kept, more than 8%% above dense %.3f", ppl, densePPL)
	}
}
