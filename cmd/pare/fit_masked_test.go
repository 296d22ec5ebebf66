package main

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFitBlocksBakesFilledInputs: the block fit on a decoder exported
// with attention_mask and position_ids beside its token ids (the trained
// character Llama, llama_char_masked), calibrated on a .npy of token
// ids whose companions pare fills (ones, 0..seq-1), bakes those inputs
// into the blocks as it bakes the causal mask, where it used to skip
// the model. It fits the same blocks to the same held-out losses as on
// the export without them, and lowers the decoded perplexity against
// the same prune without the fit.
func TestFitBlocksBakesFilledInputs(t *testing.T) {
	ids := "../../fixtures/data/llama_calib_ids.npy"
	dir := t.TempDir()
	fitNote := regexp.MustCompile(`fit blocks: (\d+ of \d+) blocks fitted .*held-out block loss .* summed over blocks (.*)`)
	prune := func(model, out, steps string) []string {
		res := pruneJSON(t, "prune", model, "-o", out, "--ratio", "0.5", "--target", "params", "--calib", ids,
			"--criterion", "obs", "--reconstruct", "--allocate", "global", "--fit-blocks", steps, "--json")
		i := slices.IndexFunc(res.Notes, func(n string) bool { return strings.HasPrefix(n, "fit blocks: ") })
		if steps == "0" {
			return nil
		}
		if i < 0 {
			t.Fatalf("%s: notes %q: want the block fit's", model, res.Notes)
		}
		return fitNote.FindStringSubmatch(res.Notes[i])
	}
	masked := "../../fixtures/models/llama_char_masked_op17.onnx"
	fit, plain, none := filepath.Join(dir, "fit.onnx"), filepath.Join(dir, "plain.onnx"), filepath.Join(dir, "none.onnx")
	got := prune(masked, fit, "20")
	want := prune("../../fixtures/models/llama_char_op17.onnx", plain, "20")
	if got == nil || want == nil || got[1] != "6 of 6" || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("masked export %q, plain export %q: want 6 of 6 blocks fitted to the same losses", got, want)
	}
	prune(masked, none, "0")
	pplFit, _ := perplexityOf(t, masked, fit)
	pplNone, _ := perplexityOf(t, masked, none)
	t.Logf("decoded perplexity at 50%%: %.3f with the fit, %.3f without", pplFit, pplNone)
	if pplFit >= pplNone {
		t.Errorf("perplexity %.3f with the fit, %.3f without: want lower", pplFit, pplNone)
	}
}
