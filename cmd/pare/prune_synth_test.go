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
	"github.com/pare-dev/pare/prune"
)

// checkAccuracy runs pare check on the 1000 committed test images and
// returns the candidate's accuracy.
func checkAccuracy(t *testing.T, dense, candidate string) float64 {
	t.Helper()
	x, y := "../../fixtures/data/fmnist_test_x.npy", "../../fixtures/data/fmnist_test_y.npy"
	out, code := runCLI(t, "check", "--json", "--inputs", x, "--labels", y, "--max-acc-drop", "100", dense, candidate)
	if code != exitOK {
		t.Fatalf("check: exit %d:\n%s", code, out)
	}
	var rep struct{ Accuracy struct{ Candidate float64 } }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Accuracy.Candidate
}

// TestPruneWithoutCalibSynthesizesInputs: without --calib or
// --criterion, pare prune scores by OBS with sensitivity allocation on
// synthesized inputs and says so. On the trained RegNetY-style and
// MobileNet fixtures (batch norms folded) at 10% of the parameters
// removed, that keeps far more of the test accuracy than magnitude,
// which breaks both (docs/RESULTS.md, "The default without calibration
// data").
func TestPruneWithoutCalibSynthesizesInputs(t *testing.T) {
	for _, name := range []string{"fmnist_regnet_op17", "fmnist_mobilenet_op17"} {
		t.Run(name, func(t *testing.T) {
			model := "../../fixtures/models/" + name + ".onnx"
			dir := t.TempDir()
			def, mag := filepath.Join(dir, "default.onnx"), filepath.Join(dir, "magnitude.onnx")
			res := pruneJSON(t, "prune", model, "-o", def, "--ratio", "0.1", "--target", "params", "--json")
			if res.Settings == nil || res.Settings.Criterion != "obs" {
				t.Fatalf("settings %+v: want the obs criterion", res.Settings)
			}
			if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "synthesized inputs") }) {
				t.Errorf("notes %q: want the synthesized inputs named", res.Notes)
			}
			pruneJSON(t, "prune", model, "-o", mag, "--ratio", "0.1", "--target", "params", "--criterion", "magnitude", "--json")
			accDef, accMag := checkAccuracy(t, model, def), checkAccuracy(t, model, mag)
			t.Logf("%s at 10%%: default without data %.3f, magnitude %.3f", name, accDef, accMag)
			if accDef < accMag+0.2 || accDef < 0.7 {
				t.Errorf("default without data %.3f, magnitude %.3f: want at least 0.7 and 20 points above magnitude", accDef, accMag)
			}
		})
	}
}

// TestPruneWithoutCalibFallsBackToMagnitude: a model whose input
// declares no shape gets no synthesized inputs, so the default without
// data keeps magnitude, says why, and still writes a model; a plan made
// on synthesized inputs records them as such and replays to the same
// file.
func TestPruneWithoutCalibFallsBackToMagnitude(t *testing.T) {
	dir := t.TempDir()
	model := "../../fixtures/models/fmnist_mobilenet_op17.onnx"
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Inputs[0].Info.GetType().GetTensorType().Shape = nil
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	noShape := filepath.Join(dir, "noshape.onnx")
	if err := os.WriteFile(noShape, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := pruneJSON(t, "prune", noShape, "-o", filepath.Join(dir, "out.onnx"), "--ratio", "0.3", "--json")
	if res.Settings == nil || !strings.HasPrefix(res.Settings.Criterion, "magnitude") || len(res.Notes) == 0 ||
		!strings.HasPrefix(res.Notes[0], "default without --calib: magnitude (inputs not synthesized: ") || !strings.Contains(res.Notes[0], "no declared shape") {
		t.Errorf("settings %+v, notes %q: want magnitude and the reason", res.Settings, res.Notes)
	}
	a, plan := filepath.Join(dir, "a.onnx"), filepath.Join(dir, "plan.json")
	res = pruneJSON(t, "prune", model, "-o", a, "--ratio", "0.2", "--target", "params", "--plan-out", plan, "--json")
	if res.Settings == nil || res.Settings.Options == nil || res.Settings.Options.Calib != prune.SyntheticCalib {
		t.Fatalf("settings %+v: want the synthesized inputs recorded", res.Settings)
	}
	requireReplay(t, model, plan, a, "the plan made on synthesized inputs")
}

// TestPruneWithoutCalibDecodesKVCache: a decoding step whose key/value
// cache is graph inputs (the trained character Llama exported as one
// step) cannot run on independently drawn inputs, since the mask's
// length must match the cache's. The default without data decodes
// random token sequences with the model itself and calibrates on the
// last step of each: at 30% of the parameters removed it keeps the
// decoded perplexity on the held-out text within 15% of dense, where
// magnitude loses more than half of it again (measured 6.06 and 10.11
// against 5.64); its plan replays to the same file.
func TestPruneWithoutCalibDecodesKVCache(t *testing.T) {
	model := "../../fixtures/models/llama_char_kv_op17.onnx"
	dir := t.TempDir()
	def, mag, plan := filepath.Join(dir, "default.onnx"), filepath.Join(dir, "magnitude.onnx"), filepath.Join(dir, "plan.json")
	res := pruneJSON(t, "prune", model, "-o", def, "--ratio", "0.3", "--target", "params", "--plan-out", plan, "--json")
	if res.Settings == nil || res.Settings.Criterion != "obs" || len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "decoding steps") {
		t.Fatalf("settings %+v, notes %q: want obs on decoded steps", res.Settings, res.Notes)
	}
	pruneJSON(t, "prune", model, "-o", mag, "--ratio", "0.3", "--target", "params", "--criterion", "magnitude", "--json")
	dense, _ := perplexityOf(t, model, model)
	pplDef, _ := perplexityOf(t, model, def)
	pplMag, _ := perplexityOf(t, model, mag)
	t.Logf("decoded perplexity: dense %.3f, default without data %.3f, magnitude %.3f", dense, pplDef, pplMag)
	if pplDef > 1.15*dense || pplMag < 1.5*dense {
		t.Errorf("perplexity %.3f by default, %.3f by magnitude, dense %.3f: want the default within 15%% of dense and magnitude past 50%%", pplDef, pplMag, dense)
	}
	requireReplay(t, model, plan, def, "the plan made on decoded steps")
}

// TestPruneDecodesTokenCalibForKVCache: --calib with a .npy of token
// sequences [N, T] on a decoding step with a key/value cache (the form
// pare check decodes) is decoded into the step's inputs: windows of 16
// tokens sampled at their last position, each with the cache the model
// grew. OBS on them keeps the decoded perplexity at 30% of the
// parameters removed within 10% of dense (measured 6.00 against 5.64;
// magnitude 10.11); the plan records the .npy and replays with it to the
// same file.
func TestPruneDecodesTokenCalibForKVCache(t *testing.T) {
	model := "../../fixtures/models/llama_char_kv_op17.onnx"
	ids := "../../fixtures/data/llama_calib_ids.npy"
	dir := t.TempDir()
	out, plan := filepath.Join(dir, "pruned.onnx"), filepath.Join(dir, "plan.json")
	res := pruneJSON(t, "prune", model, "-o", out, "--ratio", "0.3", "--target", "params", "--calib", ids,
		"--criterion", "obs", "--allocate", "global", "--plan-out", plan, "--json")
	if !slices.ContainsFunc(res.Notes, func(n string) bool {
		return strings.Contains(n, "decoded one position at a time, 2048 steps at position 15")
	}) {
		t.Errorf("notes %q: want the decoded calibration named", res.Notes)
	}
	if res.Settings == nil || res.Settings.Options == nil || res.Settings.Options.Calib != ids {
		t.Errorf("settings %+v: want the plan to record %s", res.Settings, ids)
	}
	dense, _ := perplexityOf(t, model, model)
	ppl, _ := perplexityOf(t, model, out)
	t.Logf("decoded perplexity: dense %.3f, pruned on decoded calibration %.3f", dense, ppl)
	if ppl > 1.1*dense {
		t.Errorf("perplexity %.3f, dense %.3f: want within 10%%", ppl, dense)
	}
	replay := filepath.Join(dir, "replay.onnx")
	if text, code := runPare(t, "prune", model, "-o", replay, "--plan-in", plan, "--calib", ids); code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, text)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(replay)
	if !bytes.Equal(a, b) {
		t.Errorf("the plan replayed with --calib %s gives a different file", ids)
	}
}
