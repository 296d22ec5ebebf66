package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// On the RegNet-style fixture (grouped Convs) the default with --calib
// tries its pick again with whole groups and keeps the one closer to the
// dense model after the block fit: the JSON report lists the twin with
// both fitted scores and says which was kept, the text report shows the
// scores after the fit, the written model runs in onnxruntime, and the
// plan records the samples it was pruned with.
func TestPruneDefaultComparesWholeGroups(t *testing.T) {
	const model = "../../fixtures/models/fmnist_regnet_op17.onnx"
	const calib = "../../fixtures/data/fmnist_calib_x.npy"
	dir := t.TempDir()
	out, plan := filepath.Join(dir, "out.onnx"), filepath.Join(dir, "plan.json")
	args := []string{"prune", model, "--ratio", "0.5", "--target", "params", "--calib", calib, "--search", "one-step", "--fit-blocks", "20"}
	res := pruneJSON(t, append(args, "-o", out, "--plan-out", plan, "--json")...)
	if res.Search == nil {
		t.Fatal("no search in the report")
	}
	var twins, fitted int
	for _, c := range res.Search.Candidates {
		if c.ConvGroups {
			twins++
		}
		if c.Fitted != nil {
			fitted++
		}
	}
	if twins != 1 || fitted != 2 {
		t.Fatalf("candidates %+v: want one whole-groups twin, and it and the pick fitted", res.Search.Candidates)
	}
	kept := res.Search.Candidates[res.Search.Picked]
	if kept.Fitted == nil {
		t.Errorf("kept %s, which was not compared after the fit", kept.Name)
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "kept "+kept.Name) }) {
		t.Errorf("notes %q: want the comparison's note naming %s", res.Notes, kept.Name)
	}
	if res.Settings == nil || res.Settings.ConvGroups != kept.ConvGroups {
		t.Errorf("settings %+v: conv groups should be the kept candidate's (%v)", res.Settings, kept.ConvGroups)
	}
	if acc := checkAccuracy(t, model, out); acc < 0.7 {
		t.Errorf("written model's accuracy %.3f", acc)
	}
	text, code := runPare(t, append(args, "-o", filepath.Join(dir, "text.onnx"))...)
	if code != exitOK || !strings.Contains(text, "after the block fit: KL") {
		t.Errorf("exit %d, text report without the scores after the fit:\n%s", code, text)
	}
	samples := res.Search.FitSamples + res.Search.HeldOut // a one-step pick is pruned again on all
	if kept.Steps > 1 {
		samples = res.Search.FitSamples
	}
	if res.Settings.Options == nil || res.Settings.Options.FitBlocks != 20 || res.Settings.Options.CalibSamples != samples {
		t.Errorf("plan options %+v: want 20 fit steps and the %d samples that pruned the kept path", res.Settings.Options, samples)
	}
}
