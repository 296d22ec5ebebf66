package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// symbolicFixture is the fixture whose height and width are symbolic and
// whose weights are Constant nodes.
var symbolicFixture = filepath.Join(fixtureRoot, "models", "fmnist_opnet_const_op11.onnx")

// ortMACs counts the MACs of m's Conv and Gemm nodes from the output
// shapes onnxruntime computes for input x (COUNTING.md: output elements
// × weight elements per output channel; Gemm M·N·K), independently of
// pare's shape inference.
func ortMACs(t *testing.T, m *graph.Model, x tensor.Dense) int64 {
	t.Helper()
	var names []string
	var per []int64
	for _, n := range m.Graph.Nodes {
		if n.Op() != "Conv" && n.Op() != "Gemm" {
			if n.Op() == "MatMul" || n.Op() == "ConvTranspose" {
				t.Fatalf("node %s: not covered by this count", n)
			}
			continue
		}
		w, ok := m.Graph.Constant(n.Input(1))
		if !ok {
			t.Fatalf("node %s: weight not constant", n)
		}
		k := int64(1)
		for _, d := range w.Dims[1:] {
			k *= d
		}
		if n.Op() == "Gemm" && n.IntAttr("transB", 0) == 0 {
			k = w.Dims[0]
		}
		names = append(names, n.Output(0))
		per = append(per, k)
	}
	cm, err := graph.FromProto(ort.CaptureModel(m.Proto, names))
	if err != nil {
		t.Fatal(err)
	}
	data, err := cm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outs, err := s.Run(context.Background(), map[string]tensor.Dense{"input": x}, names)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, o := range outs {
		total += int64(o.Len()) * per[i]
	}
	return total
}

// inspect --input-shape counts the MACs onnxruntime's shapes give; without
// it, the symbolic height and width make inspect say MACs are unknown.
func TestInspectInputShapeMACs(t *testing.T) {
	m, err := graph.Load(symbolicFixture)
	if err != nil {
		t.Fatal(err)
	}
	stdout, code := runPare(t, "inspect", symbolicFixture, "--json")
	var res struct {
		MACs        int64  `json:"macs"`
		MACsUnknown string `json:"macs_unknown"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil {
		t.Fatalf("inspect: exit %d, %q", code, stdout)
	}
	if res.MACsUnknown == "" {
		t.Errorf("symbolic height/width: MACs %d reported as known", res.MACs)
	}
	for _, hw := range [][2]int64{{28, 28}, {40, 64}} {
		x, err := tensor.Zeros(tensor.Float32, []int64{1, 1, hw[0], hw[1]})
		if err != nil {
			t.Fatal(err)
		}
		want := ortMACs(t, m, x)
		shape := fmt.Sprintf("input=1,1,%d,%d", hw[0], hw[1])
		stdout, code := runPare(t, "inspect", symbolicFixture, "--json", "--input-shape", shape)
		res.MACsUnknown = ""
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil {
			t.Fatalf("inspect --input-shape %s: exit %d", shape, code)
		}
		if res.MACs != want || res.MACsUnknown != "" {
			t.Errorf("--input-shape %s: MACs %d (unknown: %q), onnxruntime's shapes give %d", shape, res.MACs, res.MACsUnknown, want)
		}
	}
	if _, code := runPare(t, "inspect", symbolicFixture, "--input-shape", "input=1,28,28"); code != exitUsage {
		t.Errorf("wrong rank: exit %d, want %d", code, exitUsage)
	}
	if _, code := runPare(t, "inspect", symbolicFixture, "--input-shape", "pixels=1,1,28,28"); code != exitUsage {
		t.Errorf("unknown input: exit %d, want %d", code, exitUsage)
	}
}

// prune --target macs needs known sizes; with --input-shape it reaches
// its target in those sizes. bench and check synthesise inputs of the
// given size.
func TestInputShapeForPruneBenchCheck(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.onnx")
	if _, code := runPare(t, "prune", symbolicFixture, "-o", out, "--ratio", "0.3", "--target", "macs"); code != exitUsage {
		t.Errorf("prune --target macs on symbolic sizes: exit %d, want %d", code, exitUsage)
	}
	stdout, code := runPare(t, "prune", symbolicFixture, "-o", out, "--ratio", "0.3", "--target", "macs",
		"--input-shape", "input=1,1,64,64", "--json")
	var pr struct {
		Before, After struct{ MACs int64 }
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &pr) != nil {
		t.Fatalf("prune: exit %d", code)
	}
	if got := 1 - float64(pr.After.MACs)/float64(pr.Before.MACs); got < 0.25 || got > 0.35 {
		t.Errorf("MACs %d → %d (%.3f removed), asked 0.3", pr.Before.MACs, pr.After.MACs, got)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.SymbolicSizes()) != 2 {
		t.Errorf("pruned model's input is no longer symbolic: %v", m.Graph.Inputs[0].Info)
	}
	stdout, code = runPare(t, "bench", symbolicFixture, "--input-shape", "input=1,1,64,64", "--runs", "2", "--warmup", "0", "--json")
	var br struct {
		Models []struct {
			MACs *int64 `json:"macs"`
		} `json:"models"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &br) != nil || len(br.Models) != 1 || br.Models[0].MACs == nil || *br.Models[0].MACs != pr.Before.MACs {
		t.Errorf("bench --input-shape: exit %d, %s", code, stdout)
	}
	stdout, code = runPare(t, "check", symbolicFixture, out, "--input-shape", "input=1,1,40,48", "--min-cos", "0", "--json")
	var cr struct {
		Outputs []struct {
			Shape []int64 `json:"shape"`
		} `json:"outputs"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &cr) != nil || len(cr.Outputs) != 1 {
		t.Fatalf("check --input-shape: exit %d, %s", code, stdout)
	}
	if _, code := runPare(t, "check", symbolicFixture, out, "--input-shape", "input=1,2,40,48"); code != exitUsage {
		t.Errorf("check with a shape contradicting a static dim: exit %d, want %d", code, exitUsage)
	}
}

// A MACs target on a model whose MACs graph.Count cannot fully count
// (the onnxruntime-genai int4 decoder: shapes after GroupQueryAttention
// are not inferred) is refused with the first uncounted node named,
// nothing written; --target params prunes it.
func TestPruneMACsTargetRefusedWhenUncounted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.onnx")
	model := "../../fixtures/contrib/models/llama_decoder_nbits.onnx"
	msg, code := runCLI(t, "prune", model, "-o", out, "--ratio", "0.3", "--target", "macs")
	if code != exitUsage || !strings.Contains(msg, "first: layers.0.q_proj") {
		t.Errorf("prune --target macs with uncounted nodes: exit %d (%s), want %d naming the node", code, msg, exitUsage)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused prune wrote its output")
	}
	if _, code := runPare(t, "prune", model, "-o", out, "--ratio", "0.3", "--target", "params"); code != 0 {
		t.Errorf("--target params: exit %d", code)
	}
}
