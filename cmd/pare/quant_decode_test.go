package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQuantDecodingStepCalibratesByDecoding: pare quant (static int8
// QDQ) on a decoding step with a key/value cache (the trained character
// Llama as one step) calibrates on the steps of decoding token
// sequences, random ones without --calib (inputs drawn one by one gave
// a mask whose length is not the cache's plus one, and onnxruntime
// refused them) and windows of the .npy's sequences with it. Both
// quantized steps decode the held-out text within 3% of the dense
// perplexity (measured +0.95% and −0.39%).
func TestQuantDecodingStepCalibratesByDecoding(t *testing.T) {
	model := "../../fixtures/models/llama_char_kv_op17.onnx"
	dense, _ := perplexityOf(t, model, model)
	for _, c := range []struct{ name, calib, note string }{
		{"synthetic", "", "calibration: random token sequences decoded one position at a time, 64 steps at position 15"},
		{"token file", "../../fixtures/data/llama_calib_ids.npy", "calibration: ../../fixtures/data/llama_calib_ids.npy decoded one position at a time, 64 steps at position 15"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "q.onnx")
			args := []string{"quant", model, "-o", out}
			if c.calib != "" {
				args = append(args, "--calib", c.calib)
			}
			text, code := runCLI(t, args...)
			if code != exitOK || !strings.Contains(text, c.note) {
				t.Fatalf("exit %d, want 0 and the note %q:\n%s", code, c.note, text)
			}
			ppl, _ := perplexityOf(t, model, out)
			t.Logf("decoded perplexity: dense %.3f, int8 %.3f", dense, ppl)
			if ppl > 1.03*dense {
				t.Errorf("perplexity %.3f, dense %.3f: want within 3%%", ppl, dense)
			}
		})
	}
}

// TestCheckSynthesizesDecodedTokens: pare check without --inputs on a
// decoding step with a key/value cache decodes random token sequences
// (ids below the logits' width) one position at a time, as it decodes a
// .npy of them: the dense step against itself agrees exactly on every
// position's logits, where inputs drawn one by one made onnxruntime
// refuse the step (exit 4).
func TestCheckSynthesizesDecodedTokens(t *testing.T) {
	model := "../../fixtures/models/llama_char_kv_op17.onnx"
	text, code := runCLI(t, "check", model, model)
	if code != exitOK || !strings.Contains(text, "synthetic token sequences (seed 0, ids below 84); decoded one position at a time") ||
		!strings.Contains(text, "[8 16 84]") {
		t.Fatalf("exit %d, want 0 with 8 decoded sequences of 16 tokens:\n%s", code, text)
	}
}
