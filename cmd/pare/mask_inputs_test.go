package main

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// writeMaskedData writes rows of token ids [rows, 12] with an attention
// mask padding every third row's last four positions, and the third
// input (position ids, or token types 0 then 1), as a .npz.
func writeMaskedData(t *testing.T, path, third string, rows int) {
	t.Helper()
	const seq = 12
	r := rand.New(rand.NewPCG(9, 9))
	arrays := map[string]tensor.Dense{}
	for _, name := range []string{"input_ids", "attention_mask", third} {
		v := make([]int64, rows*seq)
		for i := range v {
			row, pos := i/seq, i%seq
			switch {
			case name == "input_ids":
				v[i] = r.Int64N(256)
			case name == "attention_mask":
				if row%3 != 0 || pos < seq-4 {
					v[i] = 1
				}
			case name == "position_ids":
				v[i] = int64(pos)
			case pos >= seq/2:
				v[i] = 1
			}
		}
		arrays[name] = tensor.Dense{DType: tensor.Int64, Shape: []int64{int64(rows), seq}, Data: v}
	}
	if err := tensor.WriteNpzFile(path, arrays, false); err != nil {
		t.Fatal(err)
	}
}

// TestPruneModelsWithMaskInputs: exports that take an attention mask and
// position or token-type ids besides the ids (as Hugging Face exports
// ship them) get the gradient paths end to end from a .npz of every
// input: --criterion taylor on the BERT encoder, --recover kd on the
// Llama decoder, each writing a model onnxruntime runs on that data.
func TestPruneModelsWithMaskInputs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		model, third string
		flags        []string
		want         string
	}{
		{"bert_masked_nano_op17", "token_type_ids", []string{"--criterion", "taylor"}, "taylor: gradients"},
		{"llama_masked_nano_op17", "position_ids", []string{"--criterion", "magnitude", "--recover", "kd", "--recover-steps", "5"}, "5 Adam steps"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			model := "../../fixtures/models/" + tc.model + ".onnx"
			data := filepath.Join(dir, tc.model+".npz")
			writeMaskedData(t, data, tc.third, 64)
			out := filepath.Join(dir, tc.model+".pruned.onnx")
			args := append([]string{"prune", model, "-o", out, "--ratio", "0.3", "--calib", data}, tc.flags...)
			stdout, code := runPare(t, args...)
			if code != 0 || !strings.Contains(stdout, tc.want) {
				t.Fatalf("prune exit %d, want 0 and %q in: %s", code, tc.want, stdout)
			}
			// The pruned model runs on every input of the data; its
			// outputs differ from the dense model's, so the agreement
			// gate fails (exit 1) after both models ran.
			stdout, code = runPare(t, "check", model, out, "--inputs", data)
			if code != 1 || !strings.Contains(stdout, "allclose") {
				t.Fatalf("check exit %d, want 1 on the allclose gate: %s", code, stdout)
			}
		})
	}
}

// TestPruneExportFromTokenIDs: a .npy of token ids alone calibrates and
// checks an export that also takes an attention mask and position ids:
// the mask is filled with ones and the positions count from 0, and the
// report says so.
func TestPruneExportFromTokenIDs(t *testing.T) {
	dir := t.TempDir()
	model := "../../fixtures/models/llama_masked_nano_op17.onnx"
	ids := filepath.Join(dir, "ids.npy")
	r := rand.New(rand.NewPCG(4, 4))
	v := make([]int64, 32*12)
	for i := range v {
		v[i] = r.Int64N(256)
	}
	if err := tensor.WriteNpyFile(ids, tensor.Dense{DType: tensor.Int64, Shape: []int64{32, 12}, Data: v}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pruned.onnx")
	stdout, code := runPare(t, "prune", model, "-o", out, "--ratio", "0.3", "--calib", ids, "--criterion", "obs", "--reconstruct")
	if code != 0 || !strings.Contains(stdout, "attention_mask all ones, position_ids 0..seq-1") {
		t.Fatalf("prune exit %d, want 0 and the filled inputs named: %s", code, stdout)
	}
	stdout, code = runPare(t, "check", model, out, "--inputs", ids)
	if code != 1 || !strings.Contains(stdout, "allclose") || !strings.Contains(stdout, "attention_mask all ones") {
		t.Fatalf("check exit %d, want 1 on the allclose gate with the filled inputs named: %s", code, stdout)
	}
}

// TestPruneVerifiesOnCalibrationData: a decoding step with a key/value
// cache (the mask's length is the past's plus the new tokens') cannot
// run on synthetic inputs of free sizes, so the written model's
// onnxruntime run takes the first calibration sample instead; without
// data it decodes two steps from an empty cache. Both are conclusive.
// --recover kd runs on it from the same data.
func TestPruneVerifiesOnCalibrationData(t *testing.T) {
	dir := t.TempDir()
	model := "../../fixtures/models/llama_kv_nano_op17.onnx"
	out := filepath.Join(dir, "pruned.onnx")
	stdout, code := runPare(t, "prune", model, "-o", out, "--ratio", "0.3", "--json")
	var res struct {
		Verify string `json:"verify"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Verify != "ok" {
		t.Fatalf("prune without data: exit %d, verify %q (%v)", code, res.Verify, err)
	}
	stdout, code = runPare(t, "prune", model, "-o", out, "--ratio", "0.3", "--calib", "../../fixtures/ref/llama_kv_nano_op17.inputs.npz", "--criterion", "magnitude", "--json")
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Verify != "ok" {
		t.Fatalf("prune with data: exit %d, verify %q (%v): %s", code, res.Verify, err, stdout)
	}
	stdout, code = runPare(t, "check", model, out, "--inputs", "../../fixtures/ref/llama_kv_nano_op17.inputs.npz")
	if code != 1 || !strings.Contains(stdout, "allclose") {
		t.Fatalf("check exit %d, want 1 on the allclose gate: %s", code, stdout)
	}
	// Distillation takes the cache inputs from the data and trains on
	// the logits, the first output.
	stdout, code = runPare(t, "prune", model, "-o", out, "--ratio", "0.3", "--calib", "../../fixtures/ref/llama_kv_nano_op17.inputs.npz",
		"--criterion", "magnitude", "--recover", "kd", "--recover-steps", "3")
	if code != 0 || !strings.Contains(stdout, "3 Adam steps") || !strings.Contains(stdout, "distilled on output logits") {
		t.Fatalf("prune --recover kd: exit %d: %s", code, stdout)
	}
}

// TestCheckSyntheticSizesThatDoNotFit: pare check without data on a
// key/value-cache decoding step decodes random token sequences (exit 0);
// with --input-shape the inputs are drawn at those sizes instead, and
// sizes that do not fit together (the mask's length not the past's plus
// one) fail in the reference model, exit as a runtime failure and say
// how to give sizes that fit; fitting sizes run.
func TestCheckSyntheticSizesThatDoNotFit(t *testing.T) {
	model := "../../fixtures/models/llama_kv_nano_op17.onnx"
	if stdout, code := runCLI(t, "check", model, model); code != exitOK || !strings.Contains(stdout, "decoded one position at a time") {
		t.Fatalf("no data: exit %d, want 0 decoding random tokens: %s", code, stdout)
	}
	bad := "attention_mask=1,5;past_k0=1,2,5,16;past_v0=1,2,5,16;past_k1=1,2,5,16;past_v1=1,2,5,16;input_ids=1,1;position_ids=1,1"
	stdout, code := runCLI(t, "check", model, model, "--input-shape", bad)
	if code != exitRuntime || !strings.Contains(stdout, "reference") || !strings.Contains(stdout, "--input-shape") {
		t.Fatalf("exit %d, want %d naming the reference and --input-shape: %s", code, exitRuntime, stdout)
	}
	fit := "attention_mask=1,6;past_k0=1,2,5,16;past_v0=1,2,5,16;past_k1=1,2,5,16;past_v1=1,2,5,16;input_ids=1,1;position_ids=1,1"
	if stdout, code = runPare(t, "check", model, model, "--input-shape", fit); code != 0 {
		t.Fatalf("--input-shape %s: exit %d: %s", fit, code, stdout)
	}
}
