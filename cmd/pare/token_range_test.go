package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// TestCalibTokenIDsPastTheVocabulary: token ids past the rows of the
// embedding table they index are the data's fault. pare prune and pare
// quant refuse them before any run, and pare check --inputs at the
// batch that holds them, with exit 2 and a message naming the file, the
// id, its sample and the input, where onnxruntime's Gather used to fail
// inside a run (exit 4, naming neither).
func TestCalibTokenIDsPastTheVocabulary(t *testing.T) {
	dir := t.TempDir()
	ids := make([]int64, 4*8)
	ids[2*8+3] = 300 // sample 2; the table has 256 rows
	d, err := tensor.New([]int64{4, 8}, ids)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "ids.npy")
	if err := tensor.WriteNpyFile(bad, d); err != nil {
		t.Fatal(err)
	}
	model := "../../fixtures/models/bert_masked_nano_op17.onnx"
	want := "token id 300 (sample 2) for input_ids is past the 256 rows of its embedding table"
	for _, args := range [][]string{
		{"prune", model, "-o", filepath.Join(dir, "p.onnx"), "--ratio", "0.3", "--calib", bad, "--criterion", "obs"},
		{"quant", model, "-o", filepath.Join(dir, "q.onnx"), "--calib", bad},
		{"check", model, model, "--inputs", bad},
	} {
		text, code := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(text, bad) || !strings.Contains(text, want) {
			t.Errorf("pare %s: exit %d, want %d naming %s and %q:\n%s", args[0], code, exitUsage, bad, want, text)
		}
	}
}

// TestCheckDecodedTokenIDsPastTheVocabulary: the same for a decoding
// step with a key/value cache, whose --inputs .npy of token sequences
// is decoded one position at a time.
func TestCheckDecodedTokenIDsPastTheVocabulary(t *testing.T) {
	dir := t.TempDir()
	ids := make([]int64, 3*6)
	ids[1*6+5] = 5000 // sample 1, the last position
	d, err := tensor.New([]int64{3, 6}, ids)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "ids.npy")
	if err := tensor.WriteNpyFile(bad, d); err != nil {
		t.Fatal(err)
	}
	model := "../../fixtures/models/llama_char_kv_op17.onnx"
	text, code := runCLI(t, "check", model, model, "--inputs", bad)
	want := "token id 5000 (sample 1) for input_ids is past the"
	if code != exitUsage || !strings.Contains(text, bad) || !strings.Contains(text, want) {
		t.Errorf("pare check: exit %d, want %d naming %s and %q:\n%s", code, exitUsage, bad, want, text)
	}
}
