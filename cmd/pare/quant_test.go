package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// runPare runs the CLI in-process and returns stdout and the exit code.
func runPare(t *testing.T, args ...string) (string, int) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(context.Background(), append([]string{"pare"}, args...))
	if err != nil {
		t.Logf("pare %s: %v (stderr %s)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), exitCode(err)
}

// runModel runs a saved model in onnxruntime on the fixture's reference
// inputs and checks every output is finite.
func runModel(t *testing.T, path string, inputs map[string]tensor.Dense) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatalf("onnxruntime rejects %s: %v", path, err)
	}
	defer s.Close()
	outs, err := s.Run(context.Background(), inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		v, err := o.Float64s()
		if err != nil {
			continue
		}
		for _, x := range v {
			if x != x {
				t.Fatalf("output %d has NaN", i)
			}
		}
	}
}

func TestQuantCommandFormats(t *testing.T) {
	dir := t.TempDir()
	model := "../../fixtures/models/gpt_nano_op17.onnx"
	inputs, err := tensor.ReadNpz("../../fixtures/ref/gpt_nano_op17.inputs.npz")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--format", "nbits", "--bits", "4", "--block", "32"},
		{"--format", "nbits", "--bits", "8", "--block", "64", "--asym"},
		{"--format", "qdq4", "--block", "16"},
		{"--format", "dynamic"},
		{"--format", "qdq", "--calib", "../../fixtures/ref/gpt_nano_op17.inputs.npz", "--calibrate", "percentile"},
		{"--format", "nbits", "--bits", "4", "--method", "gptq", "--calib-samples", "8"},
		{"--format", "nbits", "--bits", "4", "--method", "gptq", "--sequential", "--calib-samples", "8"},
		// The residual stream's channel set comes from the pruning
		// analysis (prune.ChannelSets).
		{"--format", "nbits", "--bits", "4", "--rotate", "fused"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := filepath.Join(dir, "q.onnx")
			os.Remove(out)
			stdout, code := runPare(t, append([]string{"quant", model, "-o", out, "--json"}, args...)...)
			if code != exitOK {
				t.Fatalf("exit code %d", code)
			}
			var res quantResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("JSON output: %v\n%s", err, stdout)
			}
			if len(res.Layers) == 0 || res.SizeAfter <= 0 || res.SizeBefore <= 0 {
				t.Fatalf("report: %d layers, sizes %d → %d", len(res.Layers), res.SizeBefore, res.SizeAfter)
			}
			if slices.Contains(args, "--sequential") && !strings.Contains(strings.Join(res.Notes, "\n"), "sequential") {
				t.Errorf("--sequential: the notes do not say the Hessians were sequential: %q", res.Notes)
			}
			if slices.Contains(args, "fused") && !strings.Contains(strings.Join(res.Notes, "\n"), "9 MatMul layers read a fused rotation (1 rotated sets, 5 LayerNorms") {
				t.Errorf("--rotate fused: the notes do not count the fused rotation of the residual stream: %q", res.Notes)
			}
			if _, err := graph.Load(out); err != nil {
				t.Fatal(err)
			}
			runModel(t, out, inputs)
		})
	}
}

func TestQuantCommandText(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q.onnx")
	stdout, code := runPare(t, "quant", "../../fixtures/models/fmnist_resnet_op13.onnx", "-o", out,
		"--calib", "../../fixtures/data/fmnist_calib_x.npy", "--calib-samples", "32")
	if code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"layer", "Conv", "8 sym", "per-channel", "before", "after", "ratio"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestQuantCommandRefusals(t *testing.T) {
	model := "../../fixtures/models/gpt_nano_op13.onnx"
	out := filepath.Join(t.TempDir(), "q.onnx")
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"quant", model, "-o", model}, exitUsage},
		{[]string{"quant", model}, exitUsage},
		// Settings quant does not have are usage errors, like bad flags
		// in every other command.
		{[]string{"quant", model, "-o", out, "--format", "int3"}, exitUsage},
		{[]string{"quant", model, "-o", out, "--format", "nbits", "--bits", "4", "--block", "24"}, exitUsage},
		{[]string{"quant", model, "-o", out, "--exclude", "("}, exitUsage},
		{[]string{"quant", model, "-o", out, "--sym", "--asym"}, exitUsage},
	}
	for _, c := range cases {
		if _, code := runPare(t, c.args...); code != c.code {
			t.Errorf("pare %s: exit code %d, want %d", strings.Join(c.args, " "), code, c.code)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused run left an output file")
	}
}
