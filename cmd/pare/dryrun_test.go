package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// pruneJSON runs pare prune with args, --json among them, and returns
// its result; a failed run or unreadable output fails the test.
func pruneJSON(t *testing.T, args ...string) pruneResult {
	t.Helper()
	text, code := runPare(t, args...)
	if code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, text)
	}
	var res pruneResult
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return res
}

// pare prune --dry-run reports the allocation a real run applies, with
// the measured sensitivity of zeroth's groups, and writes nothing.
func TestPruneDryRunReportsAllocation(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	src, err := os.ReadFile("../../fixtures/models/fmnist_resnet_bn_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, src, 0o644); err != nil {
		t.Fatal(err)
	}
	calib := "../../fixtures/data/fmnist_calib_x.npy"
	args := []string{"prune", model, "--ratio", "0.5", "--criterion", "zeroth", "--calib", calib, "--zo-budget", "40", "--seed", "3", "--json"}
	dry := pruneJSON(t, append(args, "--dry-run")...)
	entries, _ := os.ReadDir(dir)
	if after, _ := os.ReadFile(model); len(entries) != 1 || !bytes.Equal(after, src) {
		t.Fatalf("dry run changed the folder: %d entries, model unchanged %v", len(entries), bytes.Equal(after, src))
	}
	if !dry.DryRun || dry.After.Params >= dry.Before.Params {
		t.Fatalf("dry run: %+v", dry)
	}
	measured := 0
	for _, g := range dry.Groups {
		if g.Frozen == "" && g.Sensitivity != nil {
			measured++
		}
	}
	if measured == 0 {
		t.Error("zeroth's dry run reports no sensitivity")
	}
	out := filepath.Join(dir, "out.onnx")
	real := pruneJSON(t, append(args, "-o", out)...)
	if real.After.Params != dry.After.Params || real.After.MACs != dry.After.MACs || len(real.Groups) != len(dry.Groups) {
		t.Fatalf("dry run predicts %+v, the run gives %+v", dry.After, real.After)
	}
	for i, g := range real.Groups {
		if d := dry.Groups[i]; d.ID != g.ID || d.Kept != g.Kept {
			t.Errorf("group %d: dry run keeps %d, the run %d", g.ID, d.Kept, g.Kept)
		}
	}
	if _, code := runPare(t, "prune", model, "--dry-run", "--unstructured", "--sparsity", "0.5"); code != exitUsage {
		t.Errorf("--dry-run --unstructured: exit %d, want %d", code, exitUsage)
	}
}

// --calib without --criterion takes the data-aware default path and says
// so: with nothing else chosen it searches the candidate paths and keeps
// the one with the lowest held-out output error (a dry run shows the
// plan of the candidate's own run on the 48 samples); an explicit --allocate takes the
// fixed sensitivity-free path; without --calib the default scores by
// obs on synthesized inputs (prune_synth_test.go), and --criterion
// magnitude asks for weights alone. 64 calibration samples (48 pruned on, 16 held out) keep
// the search short.
func TestPruneDefaultWithCalib(t *testing.T) {
	model := "../../fixtures/models/fmnist_resnet_bn_op17.onnx"
	calib := "../../fixtures/data/fmnist_calib_x.npy"
	for _, c := range []struct {
		args       []string
		crit, note string
		search     bool
		candidates int
	}{
		{[]string{"--calib", calib}, "obs", "default with --calib: obs + reconstruct, the allocation, steps and group kinds searched", true, 4},
		{[]string{"--calib", calib, "--search", "one-step"}, "obs", "default with --calib: obs + reconstruct, the allocation, steps and group kinds searched", true, 2},
		{[]string{"--calib", calib, "--allocate", "global"}, "obs", "default with --calib: obs + reconstruct (", false, 0},
		{[]string{"--calib", calib, "--steps", "1"}, "obs", "default with --calib: obs + sensitivity allocation", false, 0},
		{nil, "obs", "", false, 0},
		{[]string{"--criterion", "magnitude"}, "magnitude", "", false, 0},
		{[]string{"--calib", calib, "--criterion", "wanda"}, "wanda", "", false, 0},
	} {
		args := append([]string{"prune", model, "--dry-run", "--ratio", "0.5", "--target", "params", "--json", "--calib-samples", "64"}, c.args...)
		res := pruneJSON(t, args...)
		said := len(res.Notes) > 0 && strings.HasPrefix(res.Notes[0], "default with --calib")
		if !strings.HasPrefix(res.Settings.Criterion, c.crit) || said != (c.note != "") || (said && !strings.HasPrefix(res.Notes[0], c.note)) {
			t.Errorf("%v: criterion %s, notes %q", c.args, res.Settings.Criterion, res.Notes)
		}
		if synth := len(res.Notes) > 0 && strings.HasPrefix(res.Notes[0], "default without --calib: obs"); synth != (c.args == nil) {
			t.Errorf("%v: notes %q: want the synthesized default named exactly without --calib or --criterion", c.args, res.Notes)
		}
		if c.note != "" && (res.Settings.Options == nil || !res.Settings.Options.Reconstruct) {
			t.Errorf("%v: the default path does not reconstruct: %+v", c.args, res.Settings.Options)
		}
		if (res.Search != nil) != c.search {
			t.Fatalf("%v: search %+v, want one: %v", c.args, res.Search, c.search)
		}
		if !c.search {
			continue
		}
		s := res.Search
		if s.FitSamples != 48 || s.HeldOut != 16 || len(s.Candidates) != c.candidates {
			t.Errorf("%v: search on %d+%d samples with %d candidates, want 48+16 and %d", c.args, s.FitSamples, s.HeldOut, len(s.Candidates), c.candidates)
		}
		for i, cand := range s.Candidates {
			if c.candidates == 2 && cand.Steps != 1 {
				t.Errorf("--search one-step tried %s", cand.Name)
			}
			if cand.Err == "" && cand.Score.RelMSE < s.Candidates[s.Picked].Score.RelMSE {
				t.Errorf("picked %s (rel. error %g), but %d %s scored %g", s.Candidates[s.Picked].Name, s.Candidates[s.Picked].Score.RelMSE, i, cand.Name, cand.Score.RelMSE)
			}
		}
		if res.Settings.Options.CalibSamples != 48 {
			t.Errorf("the dry run's plan records %d calibration samples, want the 48 its candidate was pruned on", res.Settings.Options.CalibSamples)
		}
	}
}

// On the trained ViT the fixed default path (here --steps 1 names the
// step count, so no search) shares the embedding (residual) width too:
// the allocation removes some of it (measured at 70% of the parameters:
// 81.6% accuracy against 67.9% with heads and MLP width only, dense
// 88.6%). --prune-embed=false keeps it whole.
func TestPruneDefaultWithCalibPrunesEmbedding(t *testing.T) {
	model := "../../fixtures/models/fmnist_vit_op17.onnx"
	calib := "../../fixtures/data/fmnist_calib_x.npy"
	for _, c := range []struct {
		args  []string
		embed bool
	}{
		{nil, true},
		{[]string{"--prune-embed=false"}, false},
	} {
		args := append([]string{"prune", model, "--dry-run", "--ratio", "0.7", "--target", "params", "--json", "--calib", calib, "--steps", "1"}, c.args...)
		res := pruneJSON(t, args...)
		cut := false
		for _, g := range res.Groups {
			if g.Kind == "embed" && g.Kept < g.Size {
				cut = true
			}
		}
		if cut != c.embed || res.Settings.PruneEmbed != c.embed {
			t.Errorf("%v: embedding width cut %v, prune_embed %v, want %v (notes %q)", c.args, cut, res.Settings.PruneEmbed, c.embed, res.Notes)
		}
	}
}

// A grouped Conv's groups count offsets: the report says how many
// channels one index is (4 and 8 in the RegNet's stages of group width
// 8), and nothing for ordinary channel groups.
func TestPruneReportsChannelsPerIndex(t *testing.T) {
	res := pruneJSON(t, "prune", "../../fixtures/models/fmnist_regnet_op17.onnx", "--dry-run", "--ratio", "0.5", "--target", "params", "--json")
	per := map[string]int{}
	for _, g := range res.Groups {
		per[g.Name] = g.PerIndex
	}
	for name, want := range map[string]int{
		"/blocks/blocks.0/a/a.0/Conv": 4, "/blocks/blocks.0/b/b.0/Conv": 4,
		"/blocks/blocks.1/a/a.0/Conv": 8, "/stem/stem.0/Conv": 0, "/blocks/blocks.0/c/c.0/Conv": 0,
	} {
		if got, ok := per[name]; !ok || got != want {
			t.Errorf("group %s: %d channels per index (found %v), want %d", name, got, ok, want)
		}
	}
}

// With calibration data, pare prune reorders the channels inside the
// RegNet's grouped Convs' groups before selecting, and says so; a
// written plan keeps the file's order (its indices are the file's
// offsets), and so do a magnitude run without data and --keep-order;
// the default without data reorders on its synthesized inputs.
func TestPruneReordersGroupedConvChannels(t *testing.T) {
	const model = "../../fixtures/models/fmnist_regnet_op17.onnx"
	calib := "../../fixtures/data/fmnist_calib_x.npy"
	reordered := func(res pruneResult) bool {
		return slices.ContainsFunc(res.Notes, func(n string) bool {
			return strings.Contains(n, "channels reordered inside the groups of grouped convolutions")
		})
	}
	res := pruneJSON(t, "prune", model, "--dry-run", "--ratio", "0.3", "--target", "params", "--criterion", "obs", "--calib", calib, "--json")
	if !reordered(res) {
		t.Errorf("notes %q: want the grouped Convs' channels reordered", res.Notes)
	}
	dir := t.TempDir()
	res = pruneJSON(t, "prune", model, "-o", filepath.Join(dir, "out.onnx"), "--ratio", "0.3", "--target", "params", "--criterion", "obs", "--calib", calib, "--plan-out", filepath.Join(dir, "plan.json"), "--json")
	if reordered(res) {
		t.Errorf("notes %q: a written plan must keep the file's order", res.Notes)
	}
	res = pruneJSON(t, "prune", model, "--dry-run", "--ratio", "0.3", "--target", "params", "--criterion", "magnitude", "--json")
	if reordered(res) {
		t.Errorf("notes %q: reordered without calibration data", res.Notes)
	}
	// The default without data reorders on its synthesized inputs.
	if res = pruneJSON(t, "prune", model, "--dry-run", "--ratio", "0.3", "--target", "params", "--json"); !reordered(res) {
		t.Errorf("notes %q: the default on synthesized inputs did not reorder", res.Notes)
	}
	res = pruneJSON(t, "prune", model, "--dry-run", "--ratio", "0.3", "--target", "params", "--criterion", "obs", "--calib", calib, "--keep-order", "--json")
	if reordered(res) {
		t.Errorf("notes %q: reordered with --keep-order", res.Notes)
	}
	if text, code := runPare(t, "prune", model, "--dry-run", "--ratio", "0.3", "--criterion", "magnitude", "--keep-order"); code != exitUsage {
		t.Errorf("--keep-order without --calib: exit %d (%s), want %d: it would change nothing", code, text, exitUsage)
	}
}

// TestPruneConvGroupsRemovesWholeGroups: --conv-groups prunes the
// RegNet's grouped Convs by whole groups: their `group` falls and every
// group keeps its 8 input channels (the default keeps the groups and
// narrows them); a plan written with it replays to the same file
// without the flag; with --unstructured it is refused.
func TestPruneConvGroupsRemovesWholeGroups(t *testing.T) {
	const model = "../../fixtures/models/fmnist_regnet_op17.onnx"
	dense, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	groups := func(m *graph.Model) map[string][2]int64 { // node → group, W axis 1
		out := map[string][2]int64{}
		for _, n := range m.Graph.Nodes {
			if n.Op() == "Conv" && n.IntAttr("group", 1) > 1 {
				w, _ := m.Graph.Constant(n.Input(1))
				out[n.Name()] = [2]int64{n.IntAttr("group", 1), w.Dims[1]}
			}
		}
		return out
	}
	before := groups(dense)
	if len(before) != 4 {
		t.Fatalf("grouped Convs %v, want the fixture's 4", before)
	}
	dir := t.TempDir()
	out, plan := filepath.Join(dir, "groups.onnx"), filepath.Join(dir, "plan.json")
	if text, code := runPare(t, "prune", model, "-o", out, "--ratio", "0.5", "--target", "params", "--conv-groups", "--plan-out", plan); code != exitOK {
		t.Fatalf("exit %d: %s", code, text)
	}
	pruned, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	fewer := 0
	for name, g := range groups(pruned) {
		if g[1] != before[name][1] || g[0] > before[name][0] {
			t.Errorf("%s: group %d with %d inputs each, dense %d with %d: want whole groups removed, their width kept", name, g[0], g[1], before[name][0], before[name][1])
		}
		if g[0] < before[name][0] {
			fewer++
		}
	}
	if fewer == 0 {
		t.Errorf("no grouped Conv lost a group: %v", groups(pruned))
	}
	requireReplay(t, model, plan, out, "the plan written with --conv-groups")
	if text, code := runPare(t, "prune", model, "-o", filepath.Join(dir, "u.onnx"), "--unstructured", "--sparsity", "0.5", "--conv-groups"); code != exitUsage {
		t.Errorf("--conv-groups with --unstructured: exit %d (%s), want %d", code, text, exitUsage)
	}
}

// requireReplay replays plan on model without other flags and requires
// the file written to equal out byte for byte.
func requireReplay(t *testing.T, model, plan, out, what string) {
	t.Helper()
	replay := filepath.Join(t.TempDir(), "replay.onnx")
	if text, code := runPare(t, "prune", model, "-o", replay, "--plan-in", plan); code != exitOK {
		t.Fatalf("%s: replay: exit %d: %s", what, code, text)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(replay)
	if !bytes.Equal(a, b) {
		t.Errorf("%s replays to a different file", what)
	}
}
