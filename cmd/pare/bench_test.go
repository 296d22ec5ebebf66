package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
)

func TestBenchJSON(t *testing.T) {
	_, ref, cand := checkModels(t)
	out, code := runCLI(t, "bench", "--json", "--batch", "1,4", "--warmup", "1", "--runs", "5", ref, cand)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Models) != 2 || rep.Threads != 1 || rep.Runs != 5 || rep.Warmup != 1 || len(rep.Batches) != 2 || !strings.HasPrefix(rep.Onnxruntime, "1.") {
		t.Fatalf("report %+v", rep)
	}
	for i, m := range rep.Models {
		// W1 4×8 + b1 8 + W2 8×3 + b2 3.
		if m.Params == nil || *m.Params != 67 || m.MACs == nil || *m.MACs <= 0 || m.SizeBytes <= 0 {
			t.Errorf("model %d: params %v MACs %v size %d (%s)", i, m.Params, m.MACs, m.SizeBytes, m.CountError)
		}
		if len(m.Timings) != 2 || m.Timings[1].Batch != 4 {
			t.Fatalf("model %d timings %+v", i, m.Timings)
		}
		for _, tm := range m.Timings {
			if tm.Skipped != "" || tm.MedianNs <= 0 || tm.P90Ns < tm.MedianNs || tm.SamplesPerSec <= 0 || tm.LatencyRatio == nil {
				t.Errorf("model %d timing %+v", i, tm)
			}
		}
	}
	first := rep.Models[0]
	if first.SizeRatio != 1 || *first.ParamsRatio != 1 || *first.MACsRatio != 1 || *first.Timings[0].LatencyRatio != 1 {
		t.Errorf("first model ratios %+v", first)
	}
}

func TestBenchText(t *testing.T) {
	_, ref, _ := checkModels(t)
	out, code := runCLI(t, "bench", "--runs", "3", "--warmup", "0", ref)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, s := range []string{"median", "p90", "samples/s", "latency×", ref, "1 thread(s)"} {
		if !strings.Contains(out, s) {
			t.Errorf("output does not mention %q:\n%s", s, out)
		}
	}
}

func TestBenchStaticBatch(t *testing.T) {
	m := orttest.MLP()
	m.Graph.Input = []*onnx.ValueInfoProto{orttest.Value("x", orttest.Float, 1, 4)}
	path := orttest.Write(t, t.TempDir(), "static.onnx", m)
	out, code := runCLI(t, "bench", "--json", "--batch", "1,8", "--runs", "2", path)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep benchReport
	json.Unmarshal([]byte(out), &rep)
	tm := rep.Models[0].Timings
	if tm[0].Skipped != "" || !strings.Contains(tm[1].Skipped, "static batch of 1") {
		t.Errorf("timings %+v", tm)
	}
}

func TestBenchExitCodes(t *testing.T) {
	dir, ref, _ := checkModels(t)
	notModel := filepath.Join(dir, "bad.onnx")
	os.WriteFile(notModel, []byte("garbage"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no models", []string{"bench"}, exitUsage},
		{"batch 0", []string{"bench", "--batch", "0", ref}, exitUsage},
		{"batch text", []string{"bench", "--batch", "1,x", ref}, exitUsage},
		{"runs 0", []string{"bench", "--runs", "0", ref}, exitUsage},
		{"threads 0", []string{"bench", "--threads", "0", ref}, exitUsage},
		{"bad flag", []string{"bench", "--nope", ref}, exitUsage},
		{"not a model", []string{"bench", "--runs", "1", ref, notModel}, exitUnsupported},
		{"missing model", []string{"bench", filepath.Join(dir, "missing.onnx")}, exitUnsupported},
	}
	for _, tt := range tests {
		out, code := runCLI(t, tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d:\n%s", tt.name, code, tt.code, out)
		}
	}
}
