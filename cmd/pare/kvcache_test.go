package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestPruneKVCacheGroups: pare prune --kv-groups on a decoding step whose
// key/value cache is graph inputs and outputs (torch 1.13 export) removes
// one KV group per layer with its cache heads: exit 0, verified on the
// calibration data, the report's interface lists the 8 cache values, the
// written model declares one KV head, and pare check feeds it the dense
// model's data (the cache's kept head) and compares its present outputs
// on the kept positions (cosine to the dense model at least 0.99 on every
// output); pare quant calibrates the pruned model on the same data and
// the quantized model checks against the dense one too; pare bench takes
// the dense model's --input-shape for both.
// --keep-interface refuses instead, with exit 2.
func TestPruneKVCacheGroups(t *testing.T) {
	model := "../../fixtures/models/llama_kv_nano_op17.onnx"
	data := "../../fixtures/ref/llama_kv_nano_op17.inputs.npz"
	out := filepath.Join(t.TempDir(), "pruned.onnx")
	stdout, code := runPare(t, "prune", model, "-o", out, "--kv-groups", "0.5", "--calib", data, "--json")
	var res struct {
		Verify    string      `json:"verify"`
		Interface ioslice.Map `json:"interface"`
		Notes     []string    `json:"notes"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Verify != "ok" {
		t.Fatalf("exit %d, verify %q (%v): %s", code, res.Verify, err, stdout)
	}
	if len(res.Interface) != 8 || !strings.Contains(strings.Join(res.Notes, "\n"), "interface: 8 model inputs and outputs") {
		t.Errorf("interface %v, notes %q: want the 8 cache values", res.Interface, res.Notes)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(m.Graph.Inputs, m.Graph.Outputs...) {
		if strings.HasPrefix(v.Name, "past") || strings.HasPrefix(v.Name, "present") {
			if d := v.Info.GetType().GetTensorType().GetShape().GetDim()[1]; d.GetDimValue() != 1 {
				t.Errorf("%s declares %v KV heads, want 1", v.Name, d)
			}
		}
	}
	stdout, code = runPare(t, "check", model, out, "--inputs", data, "--min-cos", "0.99")
	if code != 0 || !strings.Contains(stdout, "present_k0  float32  [8 1 8 16]") || !strings.Contains(stdout, "min-cos  logits      pass") {
		t.Fatalf("check exit %d, want 0 with the present cache compared on its kept head: %s", code, stdout)
	}
	// Quantizing the pruned model calibrates on the dense model's data
	// and keeps the map: the quantized model checks against the dense.
	quantized := filepath.Join(t.TempDir(), "quantized.onnx")
	if stdout, code = runPare(t, "quant", out, "-o", quantized, "--calib", data); code != 0 {
		t.Fatalf("quant: exit %d: %s", code, stdout)
	}
	if stdout, code = runPare(t, "check", model, quantized, "--inputs", data, "--min-cos", "0.99"); code != 0 {
		t.Fatalf("check of the quantized model: exit %d: %s", code, stdout)
	}
	// One --input-shape, the dense model's, serves both in pare bench.
	shape := "input_ids=1,1;position_ids=1,1;attention_mask=1,33;past_k0=1,2,32,16;past_v0=1,2,32,16;past_k1=1,2,32,16;past_v1=1,2,32,16"
	stdout, code = runPare(t, "bench", model, out, "--input-shape", shape, "--runs", "2", "--warmup", "1", "--json")
	var bench struct {
		Models []struct {
			Params     int64  `json:"params"`
			CountError string `json:"count_error"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(stdout), &bench); code != 0 || err != nil || len(bench.Models) != 2 ||
		bench.Models[1].Params == 0 || bench.Models[1].Params >= bench.Models[0].Params {
		t.Fatalf("bench: exit %d (%v): %s", code, err, stdout)
	}
	if stdout, code = runPare(t, "prune", model, "-o", out+".kept", "--kv-groups", "0.5", "--keep-interface"); code != 2 {
		t.Fatalf("--keep-interface: exit %d, want 2: %s", code, stdout)
	}
}

// TestPruneGenaiConfigNote: an onnxruntime-genai-shaped decoder (int4
// MatMulNBits, GroupQueryAttention whose presents are graph outputs) with
// a genai_config.json beside it: after --kv-groups the report says which
// head counts the config must give the written model.
func TestPruneGenaiConfigNote(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../fixtures/contrib/models/llama_decoder_nbits.onnx")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.onnx")
	cfg := `{"model": {"decoder": {"num_attention_heads": 4, "num_key_value_heads": 2, "head_size": 16}}}`
	if err := os.WriteFile(model, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "genai_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, code := runPare(t, "prune", model, "-o", filepath.Join(t.TempDir(), "out.onnx"), "--kv-groups", "0.5", "--scope", "local")
	want := "num_key_value_heads 1 (was 2) and num_attention_heads 2"
	if code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("exit %d, want a note with %q: %s", code, want, stdout)
	}
}

// TestCheckDecodesCachedSteps: pare check with a .npy of token sequences
// on a decoding step with a key/value cache decodes them one position at
// a time, each model with its own cache. The dense step against itself
// agrees exactly over every position; the KV-pruned step (magnitude, no
// compensation) against the dense step with the same groups zeroed
// agrees within the allclose gate, though their caches differ in size:
// the pruned model ran as a decoder, on its own cache, and lost nothing
// but the removed groups. Perplexity is scored on the stacked logits.
func TestCheckDecodesCachedSteps(t *testing.T) {
	model := "../../fixtures/models/llama_kv_nano_op17.onnx"
	ids := "../../fixtures/data/llama_calib_ids.npy"
	stdout, code := runPare(t, "check", model, model, "--inputs", ids, "--metric", "ppl")
	if code != 0 || !strings.Contains(stdout, "decoded one position at a time") || !strings.Contains(stdout, "[128 64 256]") ||
		!strings.Contains(stdout, "8064 next tokens") {
		t.Fatalf("dense against itself: exit %d: %s", code, stdout)
	}
	dir := t.TempDir()
	out, planPath := filepath.Join(dir, "pruned.onnx"), filepath.Join(dir, "plan.json")
	if stdout, code = runPare(t, "prune", model, "-o", out, "--kv-groups", "0.5", "--criterion", "magnitude", "--plan-out", planPath); code != 0 {
		t.Fatalf("prune: exit %d: %s", code, stdout)
	}
	f, err := os.Open(planPath)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := prune.ReadPlan(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dead, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	prunetest.KillPlan(t, dead, prune.Options{KVGroups: true}, plan.Keep())
	deadPath := filepath.Join(dir, "dead.onnx")
	if err := dead.Save(deadPath, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	stdout, code = runPare(t, "check", deadPath, out, "--inputs", ids, "--atol", "1e-5", "--rtol", "1e-4")
	if code != 0 || !strings.Contains(stdout, "decoded one position at a time") {
		t.Fatalf("pruned against the dead-group model: exit %d: %s", code, stdout)
	}
}
