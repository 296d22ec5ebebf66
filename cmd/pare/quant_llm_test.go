package main

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"
	"github.com/pare-dev/pare/tensor"
)

// TestQuantTransformerExports quantizes the dynamo Llama export (GQA,
// RoPE, fixed batch 1, symbolic sequence) and the TorchScript BERT in
// every format and method, with synthetic and with token calibration:
// each result is verified by onnxruntime before it is written and stays
// close to the float model on the exporter's reference inputs; GPTQ with
// calibration from the model's token distribution beats RTN on the Llama.
func TestQuantTransformerExports(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 0))
	ids := make([]int64, 16*32)
	for i := range ids {
		ids[i] = rng.Int64N(1000) // both models have 1000 tokens
	}
	calib := filepath.Join(dir, "ids.npy")
	d, err := tensor.New([]int64{16, 32}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNpyFile(calib, d); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key    string
		args   []string
		minCos float64
	}{
		{"rtn4", []string{"--format", "nbits", "--bits", "4"}, 0.97},
		{"gptq4-synthetic", []string{"--format", "nbits", "--bits", "4", "--method", "gptq"}, 0.97},
		{"gptq4", []string{"--format", "nbits", "--bits", "4", "--method", "gptq", "--calib", calib}, 0.97},
		{"rsq4", []string{"--format", "nbits", "--bits", "4", "--method", "rsq", "--calib", calib}, 0.97},
		{"rtn8", []string{"--format", "nbits", "--bits", "8"}, 0.999},
		{"dynamic", []string{"--format", "dynamic"}, 0.999},
		{"qdq-synthetic", []string{"--format", "qdq"}, 0.999},
		{"qdq", []string{"--format", "qdq", "--calib", calib}, 0.999},
		{"qdq4", []string{"--format", "qdq4"}, 0.97},
	}
	for _, name := range []string{"hf_llama_tiny", "hf_bert_tiny"} {
		model := "../../fixtures/models/" + name + ".onnx"
		relL2 := map[string]float64{}
		for _, c := range sweeptest.Pick(cases) {
			out := filepath.Join(dir, name+"-"+c.key+".onnx")
			text, err := runPareErr(append([]string{"quant", model, "-o", out, "--json"}, c.args...)...)
			if err != nil {
				t.Errorf("%s %v: %v", name, c.args, err)
				continue
			}
			var q quantResult
			if err := json.Unmarshal([]byte(text), &q); err != nil {
				t.Fatal(err)
			}
			if q.Verify != "ok" || len(q.Layers) == 0 || len(q.Skipped) != 0 {
				t.Errorf("%s %v: verify %q, %d layers, float %v", name, c.args, q.Verify, len(q.Layers), q.Skipped)
			}
			text, err = runPareErr("check", model, out, "--inputs", "../../fixtures/ref/"+name+".inputs.npz", "--min-cos", "0", "--json")
			if err != nil {
				t.Fatalf("%s %v: check: %v", name, c.args, err)
			}
			var rep checkReport
			if err := json.Unmarshal([]byte(text), &rep); err != nil {
				t.Fatal(err)
			}
			o := rep.Outputs[0]
			if float64(o.Cosine) < c.minCos {
				t.Errorf("%s %v: cosine %.5f < %v", name, c.args, float64(o.Cosine), c.minCos)
			}
			relL2[c.key] = float64(o.RelL2)
			t.Logf("%s %s: cosine %.5f, rel L2 %.4f", name, c.key, float64(o.Cosine), float64(o.RelL2))
		}
		if name == "hf_llama_tiny" {
			rtn, gptq := relL2["rtn4"], relL2["gptq4"]
			if !(gptq < rtn) {
				t.Errorf("%s: GPTQ with token calibration rel L2 %.4f, RTN %.4f", name, gptq, rtn)
			}
		}
	}
}
