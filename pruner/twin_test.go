package pruner

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// The twin is tried where grouped Convs go by offset, the held-out
// slice can compare and the fit runs: on the RegNet-style fixture with
// the default's fit, not with the fit off, not under --conv-groups, and
// not on a model without grouped Convs.
func TestTwinWanted(t *testing.T) {
	regnet, err := graph.Load(fixtures + "models/fmnist_regnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	resnet, err := graph.Load(fixtures + "models/fmnist_resnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	auto := Config{FitBlocks: -1}
	for _, tc := range []struct {
		name string
		m    *graph.Model
		opts prune.Options
		cfg  Config
		held int
		want bool
	}{
		{"regnet", regnet, prune.Options{}, auto, 64, true},
		{"regnet, fit off", regnet, prune.Options{}, Config{}, 64, false},
		{"regnet, nothing held out", regnet, prune.Options{}, auto, 0, false},
		{"regnet, whole groups asked", regnet, prune.Options{ConvGroups: true}, auto, 64, false},
		{"regnet, dry run", regnet, prune.Options{}, Config{FitBlocks: -1, DryRun: true}, 64, false},
		{"resnet", resnet, prune.Options{}, auto, 64, false},
	} {
		_, offsetConvs, err := searchCandidates(tc.m, tc.opts, SearchConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if got := twinWanted(offsetConvs, tc.opts, tc.cfg, tc.held); got != tc.want {
			t.Errorf("%s: twin %v, want %v", tc.name, got, tc.want)
		}
	}
}

// On the RegNet-style fixture the search tries its pick again with
// whole groups, fits both on the samples that pruned them, and keeps
// the one with the lower held-out KL after the fit (its output is
// logits); the kept path then goes on as any pick (pruned again on
// every sample in one step, fitted on every sample), its plan says
// whether whole groups went, and onnxruntime runs it.
func TestSearchComparesWholeGroupsAfterFit(t *testing.T) {
	m, dense, cfg, out, s := searchRegNet(t, 0.5, 30)
	var fitted []Tried
	var prefit []Tried
	for _, c := range s.Candidates {
		t.Logf("%s: removed %.3f, held-out KL %.4f, fitted %v", c.Name, c.Removed, c.Score.KL, c.Fitted)
		if c.Err != "" {
			t.Fatalf("%s failed: %s", c.Name, c.Err)
		}
		if c.Fitted != nil {
			fitted = append(fitted, c)
		}
		if !c.ConvGroups {
			prefit = append(prefit, c)
		}
	}
	if len(fitted) != 2 || len(s.Candidates) != len(prefit)+1 {
		t.Fatalf("%d fitted of %d candidates, want the pick and its one twin", len(fitted), len(s.Candidates))
	}
	pick := slices.MinFunc(prefit, func(a, b Tried) int {
		if betterCandidate(a, b, cfg.Settings) {
			return -1
		}
		return 1
	})
	offsets, groups := fitted[0], fitted[1]
	if offsets.Name != pick.Name || groups.ConvGroups != true || groups.Allocate != pick.Allocate || groups.Steps != pick.Steps {
		t.Fatalf("fitted %s and %s, want the search's pick %s and it with whole groups", offsets.Name, groups.Name, pick.Name)
	}
	kept := s.Candidates[s.Picked]
	if other := map[bool]Tried{true: offsets, false: groups}[kept.ConvGroups]; betterFitted(other, kept, true, cfg.Settings) {
		t.Errorf("kept %s (removed %.3f, fitted KL %g) over %s (%.3f, %g)", kept.Name, kept.Removed, kept.Fitted.KL, other.Name, other.Removed, other.Fitted.KL)
	}
	if out.Plan.Settings.ConvGroups != kept.ConvGroups {
		t.Errorf("plan's conv groups %v, the kept candidate's %v", out.Plan.Settings.ConvGroups, kept.ConvGroups)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "compared after a block fit") }) {
		t.Errorf("no note of the comparison in %q", out.Notes)
	}
	// The comparison fitted copies: the kept candidate's own copy stays
	// as the search measured it.
	for _, c := range fitted {
		if c.Fitted.KL == c.Score.KL {
			t.Errorf("%s: the same held-out KL %g before and after the fit", c.Name, c.Score.KL)
		}
	}
	src, err := calib.Open(cfg.Calib, dense, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h, err := newHeldOut(context.Background(), dense, src, s.FitSamples, s.FitSamples+s.HeldOut, 64)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.score(context.Background(), kept.Model); err != nil || again.KL != kept.Score.KL {
		t.Errorf("the kept copy's held-out KL %g (%v), %g when the search scored it", again.KL, err, kept.Score.KL)
	}
	// The kept path then goes on as any pick: fitted on every sample.
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "fit blocks: 4 of 4 blocks fitted") }) {
		t.Errorf("notes %q: want the kept path's block fit", out.Notes)
	}
	groupsOf := func(g *graph.Model) (n []int64) {
		for _, node := range g.Graph.Nodes {
			if node.Op() == "Conv" {
				n = append(n, node.IntAttr("group", 1))
			}
		}
		return n
	}
	if fewer := !slices.Equal(groupsOf(m), groupsOf(dense)); fewer != kept.ConvGroups {
		t.Errorf("group counts %v against dense %v with whole groups %v", groupsOf(m), groupsOf(dense), kept.ConvGroups)
	}
	if acc := testAccuracy(t, m); acc < 0.7 {
		t.Errorf("written model's accuracy %.3f", acc)
	}
}

// After the fit a candidate that reaches the target is kept over one
// that falls short, then the lower KL (logits) or relative error.
func TestBetterFitted(t *testing.T) {
	set := prune.Settings{Target: "params", Ratio: 0.5}
	a := Tried{Removed: 0.50, Fitted: &HeldOutScore{KL: 0.02, RelMSE: 0.03}}
	b := Tried{Removed: 0.50, Fitted: &HeldOutScore{KL: 0.03, RelMSE: 0.02}}
	short := Tried{Removed: 0.48, Fitted: &HeldOutScore{KL: 0.01, RelMSE: 0.01}}
	if !betterFitted(a, b, true, set) || betterFitted(b, a, true, set) {
		t.Errorf("by KL: want a (KL 0.02) over b (0.03)")
	}
	if !betterFitted(b, a, false, set) || betterFitted(a, b, false, set) {
		t.Errorf("by relative error: want b (0.02) over a (0.03)")
	}
	if betterFitted(short, a, true, set) || !betterFitted(a, short, false, set) {
		t.Errorf("a candidate 2 points short of the target kept over one that reaches it")
	}
}

// Where the path removes no channel of a grouped Conv (the RegNet-style
// fixture at 3% of its params), whole groups and offsets prune the same
// model: the twin is pruned, seen to match the pick's shapes, and
// neither is fitted to compare.
func TestTwinSkippedWhenGroupedConvsKeepTheirChannels(t *testing.T) {
	m, dense, _, out, s := searchRegNet(t, 0.03, 30)
	var twin *Tried
	for i, c := range s.Candidates {
		if c.Fitted != nil {
			t.Errorf("%s fitted to compare", c.Name)
		}
		if c.ConvGroups {
			twin = &s.Candidates[i]
		}
	}
	if twin == nil || twin.Err != "" {
		t.Fatalf("candidates %+v: want the pick's twin, pruned", s.Candidates)
	}
	pick := s.Candidates[s.Picked]
	if pick.ConvGroups || !sameShapes(pick.Model, twin.Model) {
		t.Fatalf("kept %s; want the pick, of the twin's shapes", pick.Name)
	}
	if sameShapes(dense, pick.Model) {
		t.Fatal("the pick removed nothing")
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool {
		return strings.Contains(n, "removes no channel of a grouped convolution either way")
	}) {
		t.Errorf("notes %q: want the skipped comparison named", out.Notes)
	}
	for i, node := range m.Graph.Nodes {
		if g := node.IntAttr("group", 1); node.Op() == "Conv" && g > 1 {
			w := m.Graph.Initializer(node.Input(1)).GetDims()
			d := dense.Graph.Initializer(dense.Graph.Nodes[i].Input(1)).GetDims()
			if g != dense.Graph.Nodes[i].IntAttr("group", 1) || !slices.Equal(w, d) {
				t.Errorf("%s: group %d, weight %v; dense %v", node.Name(), g, w, d)
			}
		}
	}
}

// Where the default would not fit the pick (here: a budget no fit
// meets), its twin is not pruned, and the report says why.
func TestTwinNotPrunedWithoutTheFit(t *testing.T) {
	saved := fitBudget
	fitBudget = func(int) float64 { return 1 }
	defer func() { fitBudget = saved }()
	_, _, _, out, s := searchRegNet(t, 0.5, -1)
	for _, c := range s.Candidates {
		if c.ConvGroups || c.Fitted != nil {
			t.Errorf("%s: tried with whole groups %v, fitted %v", c.Name, c.ConvGroups, c.Fitted)
		}
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool {
		return strings.Contains(n, "whole groups not compared without the block fit: skipped by default")
	}) {
		t.Errorf("notes %q: want the comparison's skip and its reason", out.Notes)
	}
}

// The comparison's fits: the default's take AutoFitSteps steps, with
// the output term from 1024 samples as the default's fit would weigh
// it (the final fit takes 480 steps on those 768 samples of the
// RegNet-style fixture); the user's --fit-blocks is taken as given.
func TestFinalistFitSteps(t *testing.T) {
	m, err := graph.Load(fixtures + "models/fmnist_regnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data       string
		fitBlocks  int
		steps      int
		output     float64
		finalSteps int
	}{
		{"data/fmnist_unlabelled_x.npy", -1, AutoFitSteps, AutoFitOutputWeight, 480},
		{"data/fmnist_calib_x.npy", -1, AutoFitSteps, 0, AutoFitSteps},
		{"data/fmnist_unlabelled_x.npy", 30, 30, AutoFitOutputWeight, 30},
	} {
		all, err := calib.Open(fixtures+tc.data, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		part, err := calib.Open(fixtures+tc.data, m, all.Len()*3/4)
		if err != nil {
			t.Fatal(err)
		}
		fc, note := finalistFit(Config{FitBlocks: tc.fitBlocks, FitOutput: -1}, m, m, all, part)
		if fc.Steps != tc.steps || fc.Output != tc.output {
			t.Errorf("%s, --fit-blocks %d: %d steps, output %g (%s); want %d, %g", tc.data, tc.fitBlocks, fc.Steps, fc.Output, note, tc.steps, tc.output)
		}
		if tc.fitBlocks < 0 {
			final, _ := autoFitStepsWithin(m, part, fitBudget(all.Len()))
			if final != tc.finalSteps {
				t.Errorf("%s: the default's fit on those samples %d steps, want %d", tc.data, final, tc.finalSteps)
			}
		}
		part.Close()
		all.Close()
	}
}

// searchRegNet runs the one-step default search on the RegNet-style
// fixture at ratio with fitBlocks steps (-1: the default's), keeping
// every candidate's model: the pruned model, an unpruned copy, the
// search's config and its outcome.
func searchRegNet(t *testing.T, ratio float64, fitBlocks int) (m, dense *graph.Model, cfg Config, out *Outcome, s *Search) {
	t.Helper()
	var err error
	if m, err = graph.Load(fixtures + "models/fmnist_regnet_op17.onnx"); err != nil {
		t.Fatal(err)
	}
	if dense, err = graph.Load(fixtures + "models/fmnist_regnet_op17.onnx"); err != nil {
		t.Fatal(err)
	}
	cfg = Config{Settings: searchSettings(ratio), Calib: fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, FitBlocks: fitBlocks, FitOutput: -1}
	if out, s, err = RunSearch(context.Background(), m, prune.Options{}, cfg, SearchConfig{Candidates: "one-step", KeepModels: true}); err != nil {
		t.Fatal(err)
	}
	return m, dense, cfg, out, s
}
