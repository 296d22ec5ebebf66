package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Flag values that make no sense, or that a mode would silently ignore,
// are usage errors (exit 2) that write nothing.
func TestNonsenseFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	model := writeModel(t, dir, "m.onnx", convProto())
	out := filepath.Join(dir, "out.onnx")
	garbage := filepath.Join(dir, "garbage.npz")
	if err := os.WriteFile(garbage, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(`{"format": 1, "groups": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"prune", model, "-o", out, "--unstructured", "--ratio", "0.3"},
		{"prune", model, "-o", out, "--unstructured"},
		{"prune", model, "-o", out, "--nm", "2:4", "--ratio", "0.3"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--sparsity", "0.5"},
		{"prune", model, "-o", out, "--plan-in", plan},
		{"prune", model, "-o", out, "--ratio", "0.3", "--calib-samples", "-5"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--calib", garbage, "--search", "sideways"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--search", "full"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--calib", garbage, "--criterion", "obs", "--search", "full"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--obs-order", "sideways"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--criterion", "magnitude", "--obs-order", "one-shot"},
		{"prune", model, "-o", out, "--ratio", "0.3", "--criterion", "wanda", "--calib", garbage, "--obs-order", "greedy"},
		{"quant", model, "-o", out, "--calib-samples", "-5"},
		{"quant", model, "-o", out, "--calib-samples", "0"},
		{"quant", model, "-o", out, "--format", "nbits", "--accuracy-level", "99"},
		{"quant", model, "-o", out, "--format", "nbits", "--accuracy-level", "-1"},
		{"quant", model, "-o", out, "--accuracy-level", "4"},
		{"quant", model, "-o", out, "--format", "int3"},
		{"quant", model, "-o", out, "--bits", "3"},
		{"quant", model, "-o", out, "--format", "nbits", "--block", "7"},
		{"quant", model, "-o", out, "--method", "best"},
		{"quant", model, "-o", out, "--rotate", "sideways"},
		{"quant", model, "-o", out, "--calibrate", "guess"},
		{"quant", model, "-o", out, "--calib", garbage},
		{"quant", model, "-o", out, "--calib", filepath.Join(dir, "missing.npz")},
		{"check", model, model, "--inputs", garbage},
	} {
		if _, code := runPare(t, args...); code != exitUsage {
			t.Errorf("pare %v: exit %d, want %d", args, code, exitUsage)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("pare %v wrote %s", args, out)
			os.Remove(out)
		}
	}
}

// A folder that cannot be written to is exit 5, with nothing left
// behind.
func TestWriteFailureExitCode(t *testing.T) {
	dir := t.TempDir()
	model := writeModel(t, dir, "m.onnx", convProto())
	missing := filepath.Join(dir, "no", "such", "folder")
	for _, args := range [][]string{
		{"prune", model, "-o", filepath.Join(missing, "p.onnx"), "--ratio", "0.3"},
		{"prune", model, "-o", filepath.Join(dir, "p.onnx"), "--ratio", "0.3", "--plan-out", filepath.Join(missing, "plan.json")},
		{"quant", model, "-o", filepath.Join(missing, "q.onnx")},
	} {
		if _, code := runPare(t, args...); code != exitWrite {
			t.Errorf("pare %v: exit %d, want %d", args, code, exitWrite)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the model", len(entries))
	}
}
