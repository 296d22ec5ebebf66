package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// fixedBatchCopy writes model with its input's batch axis declared as 1,
// as exporters write LLMs ([1, seq]), and returns its path.
func fixedBatchCopy(t *testing.T, model string) string {
	t.Helper()
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	dims := m.Graph.Inputs[0].Info.GetType().GetTensorType().GetShape().GetDim()
	dims[0].Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 1}
	path := filepath.Join(t.TempDir(), "fixed.onnx")
	if err := m.Save(path, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if graph.FixedBatch(m) != 1 {
		t.Fatalf("fixed batch %d, want 1", graph.FixedBatch(m))
	}
	return path
}

// TestCalibrationSplitsFixedBatch: every calibration consumer feeds a
// [8, 32] token file to a model declaring batch 1 one row at a time, and
// gets the statistics it gets from the same rows on the model with a
// symbolic batch.
func TestCalibrationSplitsFixedBatch(t *testing.T) {
	dyn := "../../fixtures/models/gpt_nano_op13.onnx"
	fixed := fixedBatchCopy(t, dyn)
	ids, err := tensor.ReadNpyFile("../../fixtures/data/gpt_calib_ids.npy")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ids.Slice(0, 8)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calib := filepath.Join(dir, "ids.npy")
	if err := tensor.WriteNpyFile(calib, rows); err != nil {
		t.Fatal(err)
	}
	run := func(model string, args []string) []byte {
		t.Helper()
		out, err := runPareErr(append([]string{args[0], model, "-o", filepath.Join(t.TempDir(), "o.onnx"), "--json", "--calib", calib}, args[1:]...)...)
		if err != nil {
			t.Fatalf("%s %v: %v", model, args, err)
		}
		return []byte(out)
	}
	for _, args := range [][]string{
		{"prune", "--mlp", "0.5", "--criterion", "wanda"},
		{"prune", "--mlp", "0.5", "--criterion", "obs"},
		{"prune", "--mlp", "0.5", "--reconstruct"},
		{"prune", "--unstructured", "--sparsity", "0.5", "--criterion", "wanda"},
	} {
		var a, b pruneResult
		if err := json.Unmarshal(run(dyn, args), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(run(fixed, args), &b); err != nil {
			t.Fatal(err)
		}
		if (a.After.Params == a.Before.Params && a.Sparsity < 0.4) || a.After.Params != b.After.Params || len(a.Groups) != len(b.Groups) || len(a.Layers) != len(b.Layers) {
			t.Fatalf("%v: params %d→%d, sparsity %.2f (symbolic batch) vs %d (fixed)", args, a.Before.Params, a.After.Params, a.Sparsity, b.After.Params)
		}
		for i := range a.Groups {
			if a.Groups[i].Kept != b.Groups[i].Kept {
				t.Errorf("%v: group %d keeps %d (symbolic batch) vs %d (fixed)", args, a.Groups[i].ID, a.Groups[i].Kept, b.Groups[i].Kept)
			}
		}
		for i := range a.Layers {
			if a.Layers[i].Zeros != b.Layers[i].Zeros {
				t.Errorf("%v: layer %s zeros %d vs %d", args, a.Layers[i].Tensor, a.Layers[i].Zeros, b.Layers[i].Zeros)
			}
		}
	}
	// Zeroth-order scores depend on how many batches the pass budget
	// covers, so batch 1 and batch 8 differ; it must run and prune.
	var zo pruneResult
	if err := json.Unmarshal(run(fixed, []string{"prune", "--ratio", "0.2", "--criterion", "zeroth", "--zo-budget", "40"}), &zo); err != nil {
		t.Fatal(err)
	}
	if zo.After.Params >= zo.Before.Params || zo.ForwardPasses == 0 {
		t.Errorf("zeroth on the fixed-batch model: params %d→%d in %d passes", zo.Before.Params, zo.After.Params, zo.ForwardPasses)
	}
	for _, args := range [][]string{
		{"quant", "--format", "nbits", "--bits", "4", "--method", "gptq"},
		{"quant", "--format", "nbits", "--bits", "4", "--method", "rsq"},
		{"quant", "--format", "qdq"},
	} {
		var a, b quantResult
		if err := json.Unmarshal(run(dyn, args), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(run(fixed, args), &b); err != nil {
			t.Fatal(err)
		}
		if len(a.Layers) == 0 || len(a.Layers) != len(b.Layers) || a.Samples != b.Samples {
			t.Fatalf("%v: %d layers over %d samples vs %d over %d", args, len(a.Layers), a.Samples, len(b.Layers), b.Samples)
		}
		for i := range a.Layers {
			ea, eb := a.Layers[i].WeightError, b.Layers[i].WeightError
			if math.Abs(ea-eb) > 1e-3*math.Max(ea, 1e-6) {
				t.Errorf("%v: layer %s weight error %.6g (symbolic batch) vs %.6g (fixed)", args, a.Layers[i].Node, ea, eb)
			}
		}
	}
}
