package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// TestFLAPKeepsOutputMean: FLAP removes hidden channels of a two-layer
// MLP and adds their mean contribution to the second layer's bias (a new
// Add for the bias-free MatMul, the existing bias of the Gemm), so the
// pruned model's output mean over the calibration data equals the dense
// model's, which plain removal does not give.
func TestFLAPKeepsOutputMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 0))
	vals := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	dir := t.TempDir()
	for _, second := range []string{"MatMul", "Gemm"} {
		b := build.New(13)
		x := b.Input("x", onnx.TensorProto_FLOAT, -1, 8)
		h := b.Node("MatMul", []string{x, b.Init("w1", []int64{8, 16}, vals(8*16, 1))})
		h = b.Node("Add", []string{h, b.Init("b1", []int64{16}, vals(16, 1))})
		h = b.Node("Relu", []string{h})
		if second == "MatMul" {
			b.Node("MatMul", []string{h, b.Init("w2", []int64{16, 4}, vals(16*4, 1))})
		} else {
			b.Node("Gemm", []string{h, b.Init("w2", []int64{16, 4}, vals(16*4, 1)), b.Init("b2", []int64{4}, vals(4, 1))})
		}
		b.Last().Output[0] = "y"
		b.Output("y", onnx.TensorProto_FLOAT, -1, 4)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		model := filepath.Join(dir, second+".onnx")
		if err := m.Save(model, graph.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		xs, err := tensor.New([]int64{256, 8}, vals(256*8, 1))
		if err != nil {
			t.Fatal(err)
		}
		calib := filepath.Join(dir, "x.npy")
		if err := tensor.WriteNpyFile(calib, xs); err != nil {
			t.Fatal(err)
		}
		means := map[string][]float64{}
		for _, crit := range []string{"flap", "magnitude"} {
			out := filepath.Join(dir, second+"-"+crit+".onnx")
			plan := filepath.Join(dir, second+"-"+crit+".plan.json")
			text, err := runPareErr("prune", model, "-o", out, "--ratio", "0.5", "--criterion", crit, "--calib", calib, "--json", "--plan-out", plan)
			if err != nil {
				t.Fatalf("%s %s: %v", second, crit, err)
			}
			var res pruneResult
			if err := json.Unmarshal([]byte(text), &res); err != nil {
				t.Fatal(err)
			}
			if res.After.Params >= res.Before.Params {
				t.Fatalf("%s %s: nothing pruned", second, crit)
			}
			if crit == "flap" && !strings.Contains(strings.Join(res.Notes, " "), "bias of 1 layers") {
				t.Errorf("%s: notes %v", second, res.Notes)
			}
			means[crit] = outputMean(t, out, xs)
			// A replayed plan recomputes the statistics and compensates
			// the same way.
			again := filepath.Join(dir, second+"-"+crit+"-replay.onnx")
			if _, err := runPareErr("prune", model, "-o", again, "--plan-in", plan); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(out)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) {
				t.Errorf("%s %s: replaying the plan gave other bytes", second, crit)
			}
		}
		dense := outputMean(t, model, xs)
		for j := range dense {
			if math.Abs(means["flap"][j]-dense[j]) > 1e-4*(1+math.Abs(dense[j])) {
				t.Errorf("%s: output %d mean %.6f after FLAP, %.6f dense", second, j, means["flap"][j], dense[j])
			}
		}
		shift := 0.0
		for j := range dense {
			shift += math.Abs(means["magnitude"][j] - dense[j])
		}
		if shift < 1e-2 {
			t.Errorf("%s: removal alone keeps the mean (%.4g): the test proves nothing", second, shift)
		}
	}
}

// outputMean runs model on xs and returns the mean of each output column.
func outputMean(t *testing.T, model string, xs tensor.Dense) []float64 {
	t.Helper()
	s, err := ort.NewSessionFromFile(model, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]tensor.Dense{"x": xs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := out[0].Float64s()
	if err != nil {
		t.Fatal(err)
	}
	cols := int(out[0].Shape[1])
	mean := make([]float64, cols)
	for i, x := range v {
		mean[i%cols] += x / float64(len(v)/cols)
	}
	return mean
}
