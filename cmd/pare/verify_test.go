package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// rejectedModel writes a two-layer MLP whose hidden activation goes
// through Sqrt on int32, a type the ONNX schema (and so onnxruntime)
// refuses, while pare can still prune and quantize it. It returns the
// path and the Sqrt node's name.
func rejectedModel(t *testing.T) (string, string) {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 16)
	w1 := make([]float32, 16*32)
	for i := range w1 {
		w1[i] = float32(i%7) - 3
	}
	w2 := make([]float32, 32*4)
	for i := range w2 {
		w2[i] = float32(i%5) - 2
	}
	h := b.Node("MatMul", []string{x, b.Init("w1", []int64{16, 32}, w1)})
	h = b.Node("Cast", []string{h}, build.Int("to", int64(onnx.TensorProto_INT32)))
	h = b.Node("Sqrt", []string{h})
	sqrt := b.Last().GetName()
	h = b.Node("Cast", []string{h}, build.Int("to", int64(onnx.TensorProto_FLOAT)))
	y := b.Node("MatMul", []string{h, b.Init("w2", []int64{32, 4}, w2)})
	b.Last().Output[0] = "y"
	_ = y
	b.Output("y", onnx.TensorProto_FLOAT, -1, 4)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rejected.onnx")
	if err := m.Save(path, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path, sqrt
}

// runPareErr runs the CLI in-process and returns the error as well.
func runPareErr(args ...string) (string, error) {
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(context.Background(), append([]string{"pare"}, args...))
	return out.String(), err
}

// TestVerifyRefusesRejectedModel: prune and quant build an onnxruntime
// session on their result before writing; a model the runtime refuses
// is exit 3 naming the node, and nothing is written unless --no-verify.
func TestVerifyRefusesRejectedModel(t *testing.T) {
	model, sqrt := rejectedModel(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"prune", model, "--ratio", "0.5"},
		{"quant", model, "--format", "dynamic"},
	} {
		out := filepath.Join(dir, args[0]+".onnx")
		_, err := runPareErr(append(args, "-o", out)...)
		if code := exitCode(err); code != exitUnsupported {
			t.Fatalf("%v: exit %d (%v), want %d", args, code, err, exitUnsupported)
		}
		t.Log(err)
		if !errors.Is(err, check.ErrRejected) || !strings.Contains(err.Error(), `node "`+sqrt+`"`) {
			t.Errorf("%v: error does not name node %s: %v", args, sqrt, err)
		}
		if _, serr := os.Stat(out); !os.IsNotExist(serr) {
			t.Errorf("%v: %s was written", args, out)
		}
		stdout, err := runPareErr(append(args, "-o", out, "--no-verify", "--json")...)
		if err != nil {
			t.Fatalf("%v --no-verify: %v", args, err)
		}
		var res struct{ Verify string }
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if _, serr := os.Stat(out); serr != nil || !strings.Contains(res.Verify, "--no-verify") {
			t.Errorf("%v --no-verify: written %v, verify %q", args, serr, res.Verify)
		}
	}
}

// TestVerifyRunsGoodModels: a model onnxruntime accepts reports "ok".
func TestVerifyRunsGoodModels(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"prune", "../../fixtures/models/gpt_nano_op13.onnx", "--mlp", "0.5"},
		{"quant", "../../fixtures/models/gpt_nano_op13.onnx", "--format", "nbits", "--bits", "4"},
	} {
		out, err := runPareErr(append(args, "-o", filepath.Join(dir, args[0]+".onnx"), "--json")...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var res struct{ Verify string }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if res.Verify != "ok" {
			t.Errorf("%v: verify %q, want ok", args, res.Verify)
		}
	}
}

// TestVerifyRuntimeMissing: without onnxruntime the result is written
// with a note, not refused.
func TestVerifyRuntimeMissing(t *testing.T) {
	bin := buildPare(t)
	out := filepath.Join(t.TempDir(), "p.onnx")
	cmd := exec.Command(bin, "--ort-lib", "/nonexistent/libonnxruntime.so", "prune", "../../fixtures/models/gpt_nano_op13.onnx", "--mlp", "0.5", "-o", out)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stdout), "verification skipped") || !strings.Contains(string(stdout), "/nonexistent/libonnxruntime.so") {
		t.Errorf("no note that verification was skipped:\n%s", stdout)
	}
}

func TestFailingNode(t *testing.T) {
	for msg, want := range map[string]string{
		"Load model from memory failed:Node (/fc/MatMul) Op (MatMul) [ShapeInferenceError] Incompatible dimensions": "/fc/MatMul",
		"Non-zero status code returned while running Add node. Name:'add_3' Status Message: broadcast":              "add_3",
		`This is an invalid model. In Node, ("n1", Foo, "", -1) : ("x": tensor(float),) -> ("y",) , Error No Op`:    "n1",
		"Could not find an implementation for Relu(14) node with name 'relu'":                                       "relu",
		"Type Error: Type (tensor(int32)) of input parameter (x) of operator (Sqrt) in node (Sqrt_3) is invalid.":   "Sqrt_3",
		"out of memory": "",
	} {
		if got := check.FailingNode(msg); got != want {
			t.Errorf("%q: got %q, want %q", msg, got, want)
		}
	}
}

// TestVerifyInconclusiveWhenTheInputFailsToo: a model whose free input
// sizes must fit together (c is as long as a and b concatenated) fails
// on synthetic sizes drawn alike, and so does the model it was made from:
// the verification is inconclusive, not a rejection.
func TestVerifyInconclusiveWhenTheInputFailsToo(t *testing.T) {
	b := build.New(17)
	a := b.Input("a", onnx.TensorProto_FLOAT, -1, -1)
	bb := b.Input("b", onnx.TensorProto_FLOAT, -1, -1)
	c := b.Input("c", onnx.TensorProto_FLOAT, -1, -1)
	cat := b.Node("Concat", []string{a, bb}, build.Int("axis", 1))
	b.Node("Add", []string{cat, c})
	b.Last().Output[0] = "y"
	b.Output("y", onnx.TensorProto_FLOAT, -1, -1)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sizes.onnx")
	if err := m.Save(path, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := check.VerifyFile(context.Background(), path, path); !errors.Is(err, check.ErrInconclusive) {
		t.Fatalf("verify: %v, want %v", err, check.ErrInconclusive)
	}
}
