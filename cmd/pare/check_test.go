package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

// runCLI runs the CLI in-process and returns stdout+stderr and the exit
// code main would use.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(context.Background(), append([]string{"pare"}, args...))
	if err != nil {
		out.WriteString("\nerror: " + err.Error())
	}
	return out.String(), exitCode(err)
}

// checkModels writes the MLP test model, a copy with one weight changed
// by 5%, and input data and labels.
func checkModels(t *testing.T) (dir, ref, cand string) {
	t.Helper()
	dir = t.TempDir()
	ref = orttest.Write(t, dir, "ref.onnx", orttest.MLP())
	cand = orttest.Write(t, dir, "cand.onnx", orttest.Perturb(orttest.MLP(), "W2", 0.05))
	x := make([]float32, 40*4)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	d, _ := tensor.New([]int64{40, 4}, x)
	if err := tensor.WriteNpyFile(filepath.Join(dir, "x.npy"), d); err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNpzFile(filepath.Join(dir, "x.npz"), map[string]tensor.Dense{"x": d}, true); err != nil {
		t.Fatal(err)
	}
	y := make([]int64, 40)
	for i := range y {
		y[i] = int64(i % 3)
	}
	yd, _ := tensor.New([]int64{40}, y)
	if err := tensor.WriteNpyFile(filepath.Join(dir, "y.npy"), yd); err != nil {
		t.Fatal(err)
	}
	return dir, ref, cand
}

func TestCheckSelfPasses(t *testing.T) {
	dir, ref, _ := checkModels(t)
	out, code := runCLI(t, "check", ref, ref)
	if code != exitOK || !strings.Contains(out, "verdict  PASS") || !strings.Contains(out, "logits") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, in := range []string{"x.npy", "x.npz"} {
		out, code = runCLI(t, "check", ref, ref, "--inputs", filepath.Join(dir, in), "--labels", filepath.Join(dir, "y.npy"), "--batch", "7")
		if code != exitOK || !strings.Contains(out, "40 samples, batch 7") || !strings.Contains(out, "accuracy") {
			t.Fatalf("%s: exit %d:\n%s", in, code, out)
		}
	}
}

func TestCheckPerturbedFails(t *testing.T) {
	_, ref, cand := checkModels(t)
	out, code := runCLI(t, "check", ref, cand)
	if code != exitCheckFailed || !strings.Contains(out, "verdict  FAIL") || !strings.Contains(out, `allclose on "logits"`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	// Looser gates accept the same change.
	out, code = runCLI(t, "check", ref, cand, "--min-cos", "0.99", "--min-top1", "0.5")
	if code != exitOK {
		t.Fatalf("loose gates: exit %d:\n%s", code, out)
	}
	// --atol alone sets rtol to 0.
	out, code = runCLI(t, "check", ref, cand, "--atol", "10")
	if code != exitOK || !strings.Contains(out, "atol 10 + rtol 0") {
		t.Fatalf("--atol 10: exit %d:\n%s", code, out)
	}
}

func TestCheckJSON(t *testing.T) {
	dir, ref, cand := checkModels(t)
	out, code := runCLI(t, "check", "--json", "--labels", filepath.Join(dir, "y.npy"), "--inputs", filepath.Join(dir, "x.npy"),
		"--atol", "1e-6", "--max-acc-drop", "100", ref, cand)
	if code != exitCheckFailed {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	jsonPart, _, _ := strings.Cut(out, "\nerror: ")
	var rep struct {
		Reference, Candidate, Inputs, Onnxruntime string
		Samples, Batch                            int64
		Threads                                   int
		Thresholds                                map[string]any
		Outputs                                   []map[string]any
		Accuracy                                  map[string]any
		Gates                                     []map[string]any
		Pass                                      *bool
	}
	if err := json.Unmarshal([]byte(jsonPart), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Reference != ref || rep.Candidate != cand || rep.Samples != 40 || rep.Threads != 1 || rep.Pass == nil || *rep.Pass ||
		!strings.HasPrefix(rep.Onnxruntime, "1.") || rep.Thresholds["allclose"] == nil {
		t.Errorf("report %+v", rep)
	}
	for _, k := range []string{"name", "dtype", "shape", "elements", "max_abs", "mean_abs", "rel_l2", "cosine", "top1", "rows", "allclose_violations", "ref_nan", "cand_nan", "inf_mismatch"} {
		if _, ok := rep.Outputs[0][k]; !ok {
			t.Errorf("output has no %q", k)
		}
	}
	for _, k := range []string{"output", "labels", "reference", "candidate", "drop_points"} {
		if _, ok := rep.Accuracy[k]; !ok {
			t.Errorf("accuracy has no %q", k)
		}
	}
	gates := map[string]bool{}
	for _, g := range rep.Gates {
		gates[g["gate"].(string)] = g["pass"].(bool)
	}
	if len(gates) != 2 || gates["allclose"] || !gates["max-acc-drop"] {
		t.Errorf("gates %v", rep.Gates)
	}
}

func TestCheckExitCodes(t *testing.T) {
	dir, ref, cand := checkModels(t)
	notModel := filepath.Join(dir, "text.onnx")
	os.WriteFile(notModel, []byte("not a model"), 0o644)
	badNpy := filepath.Join(dir, "bad.npy")
	os.WriteFile(badNpy, []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '>f4'}"), 0o644)
	wide, _ := tensor.New([]int64{2, 5}, make([]float32, 10))
	widePath := filepath.Join(dir, "wide.npy")
	tensor.WriteNpyFile(widePath, wide)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no args", []string{"check"}, exitUsage},
		{"one arg", []string{"check", ref}, exitUsage},
		{"three args", []string{"check", ref, ref, ref}, exitUsage},
		{"bad flag", []string{"check", "--nope", ref, cand}, exitUsage},
		{"bad float", []string{"check", "--atol", "abc", ref, cand}, exitUsage},
		{"negative atol", []string{"check", "--atol", "-1", ref, cand}, exitUsage},
		{"min-cos > 1", []string{"check", "--min-cos", "2", ref, cand}, exitUsage},
		{"zero samples", []string{"check", "--samples", "0", ref, cand}, exitUsage},
		{"zero threads", []string{"check", "--threads", "0", ref, cand}, exitUsage},
		{"bad int range", []string{"check", "--int-range", "5,1", ref, cand}, exitUsage},
		{"acc drop without labels", []string{"check", "--max-acc-drop", "1", ref, cand}, exitUsage},
		{"missing inputs file", []string{"check", "--inputs", filepath.Join(dir, "nope.npz"), ref, cand}, exitUsage},
		{"inputs not npy/npz", []string{"check", "--inputs", notModel, ref, cand}, exitUsage},
		{"inputs is a directory", []string{"check", "--inputs", dir + "/d.npy", ref, cand}, exitUsage},
		{"missing labels", []string{"check", "--labels", filepath.Join(dir, "nope.npy"), ref, cand}, exitUsage},
		{"malformed npy", []string{"check", "--inputs", badNpy, ref, cand}, exitUsage},
		{"data of wrong width", []string{"check", "--inputs", widePath, ref, cand}, exitUsage},
		{"reference not a model", []string{"check", notModel, cand}, exitUnsupported},
		{"candidate missing", []string{"check", ref, filepath.Join(dir, "missing.onnx")}, exitUnsupported},
	}
	os.Mkdir(dir+"/d.npy", 0o755)
	for _, tt := range tests {
		out, code := runCLI(t, tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d:\n%s", tt.name, code, tt.code, out)
		}
	}
}

// TestCheckRuntimeMissing runs the built binary with a library path that
// does not exist: exit 4 and one line naming the path.
func TestCheckRuntimeMissing(t *testing.T) {
	_, ref, _ := checkModels(t)
	bin := buildPare(t)
	for _, args := range [][]string{
		{"--ort-lib", "/nonexistent/libonnxruntime.so", "check", ref, ref},
		{"--ort-lib", "/nonexistent/libonnxruntime.so", "bench", ref},
	} {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != exitRuntime {
			t.Errorf("%v: %v, want exit %d; stderr:\n%s", args, err, exitRuntime, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "/nonexistent/libonnxruntime.so") {
			t.Errorf("%v: stderr is not one line naming the path:\n%s", args, msg)
		}
	}
}

func buildPare(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pare")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCheckFixture compares a trained fixture with itself on its test
// images and labels, and with a copy whose logits are scaled.
func TestCheckFixture(t *testing.T) {
	model := "../../fixtures/models/fmnist_resnet_op13.onnx"
	x, y := "../../fixtures/data/fmnist_test_x.npy", "../../fixtures/data/fmnist_test_y.npy"
	out, code := runCLI(t, "check", "--json", "--inputs", x, "--labels", y, "--max-acc-drop", "0", model, model)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep struct {
		Samples  int64
		Accuracy struct{ Reference, Candidate float64 }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	// fixtures/manifest.json records 91.5% on the first 1000 test images.
	if rep.Samples != 1000 || rep.Accuracy.Reference != 0.915 || rep.Accuracy.Candidate != 0.915 {
		t.Errorf("samples %d, accuracy %+v", rep.Samples, rep.Accuracy)
	}
}
