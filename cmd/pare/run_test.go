package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/report"
)

const (
	fmnistModel  = "../../fixtures/models/fmnist_resnet_op13.onnx"
	fmnistModel2 = "../../fixtures/models/fmnist_resnet_op17.onnx"
	fmnistTestX  = "../../fixtures/data/fmnist_test_x.npy"
	fmnistTestY  = "../../fixtures/data/fmnist_test_y.npy"
	fmnistCalib  = "../../fixtures/data/fmnist_calib_x.npy"
)

// writeRecipe writes a recipe into a temporary directory; fixture paths
// in it are made absolute so that it can live anywhere.
func writeRecipe(t *testing.T, text string) string {
	t.Helper()
	for _, p := range []string{fmnistModel2, fmnistModel, fmnistTestX, fmnistTestY, fmnistCalib} {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, p, abs)
	}
	path := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunCIRecipe runs examples/ci-recipe.yaml (prune 30% by magnitude,
// int8 QDQ with calibration, check on the test set with labels, bench)
// on the trained CNN and checks every output it promises.
func TestRunCIRecipe(t *testing.T) {
	out := t.TempDir()
	text, code := runCLI(t, "run", "../../examples/ci-recipe.yaml", "--out", out, "--json")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	var res runResult
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatalf("--json output is not one JSON document (progress must stay off): %v\n%s", err, text)
	}
	dir := filepath.Join(out, "fmnist_resnet_op13")
	for _, f := range []string{"prune.onnx", "plan.json", "prune.json", "quant.onnx", "quant.json", "check.json", "bench.json", "report.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	for _, f := range []string{"report.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing summary: %v", err)
		}
	}
	for _, f := range []string{"prune.onnx", "quant.onnx"} {
		if _, err := graph.Load(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s does not load: %v", f, err)
		}
	}
	run, err := report.ReadRun(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range run.Steps {
		if s.Status != report.StepDone {
			t.Errorf("step %s: %s %s", s.Name, s.Status, s.Error)
		}
	}
	b, a := run.Before, run.After
	if a.MACs == nil || b.MACs == nil || *a.MACs >= *b.MACs || *a.Params >= *b.Params || *a.SizeBytes >= *b.SizeBytes/3 {
		t.Errorf("pruned and quantized model is not smaller: before %+v after %+v", b, a)
	}
	if b.Accuracy == nil || a.Accuracy == nil || *b.Accuracy < 0.9 || a.LatencyNs == nil {
		t.Fatalf("accuracy or latency not measured: before %+v after %+v", b, a)
	}
	if len(run.Layers) == 0 || len(run.Gates) != 2 || !run.Pass || run.Status != report.RunPassed {
		t.Errorf("layers %d, gates %+v, status %s", len(run.Layers), run.Gates, run.Status)
	}
	t.Logf("measured: accuracy %.3f -> %.3f, agreement %.3f, MACs %d -> %d, size %d -> %d bytes, latency %d -> %d ns",
		*b.Accuracy, *a.Accuracy, *a.Agreement, *b.MACs, *a.MACs, *b.SizeBytes, *a.SizeBytes, *b.LatencyNs, *a.LatencyNs)
	if res.Summary == nil || len(res.Summary.Runs) != 1 || !res.Summary.Runs[0].Pareto {
		t.Errorf("summary: %+v", res.Summary)
	}
}

// TestRunImpossibleGateFails holds two models to gates no pruned model
// can pass: the run exits 1 naming each model and gate, and both models
// still finish every step.
func TestRunImpossibleGateFails(t *testing.T) {
	recipe := writeRecipe(t, `
models: [`+fmnistModel+`, `+fmnistModel2+`]
steps:
  - prune: {ratio: 0.3}
  - check: {inputs: `+fmnistTestX+`, labels: `+fmnistTestY+`}
gates:
  max-acc-drop: 0
  min-top1: 1.0
`)
	out := t.TempDir()
	text, code := runCLI(t, "run", recipe, "--out", out, "--jobs", "2")
	if code != exitCheckFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitCheckFailed, text)
	}
	for _, want := range []string{"2 of 2 runs did not pass", "fmnist_resnet_op13: gate min-top1 failed", "fmnist_resnet_op17: gate min-top1 failed", "gate max-acc-drop failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, m := range []string{"fmnist_resnet_op13", "fmnist_resnet_op17"} {
		run, err := report.ReadRun(filepath.Join(out, m, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != report.RunGateFailed || run.Pass || run.Steps[1].Status != report.StepDone {
			t.Errorf("%s: status %s, steps %+v", m, run.Status, run.Steps)
		}
	}
	sum, err := report.ReadSummary(filepath.Join(out, "report.json"))
	if err != nil || sum.Status != report.RunGateFailed {
		t.Fatalf("summary %+v, %v", sum, err)
	}
}

// cancelAfter is a progress writer that cancels the run when a line
// containing marker is written.
type cancelAfter struct {
	marker string
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

// TestRunInterruptedAfterFirstStep cancels the context as soon as the
// prune step has finished: the pruned model is complete, nothing of the
// later steps exists, and the reports say which steps finished.
func TestRunInterruptedAfterFirstStep(t *testing.T) {
	recipe := writeRecipe(t, `
models: [`+fmnistModel+`]
steps:
  - prune: {ratio: 0.3}
  - quant: {format: qdq, calib: `+fmnistCalib+`}
  - check: {inputs: `+fmnistTestX+`}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := t.TempDir()
	res, err := runRun(ctx, runOptions{Recipe: recipe, Out: out, Jobs: 1,
		Progress: &cancelAfter{marker: "prune done", cancel: cancel}})
	if !errors.Is(err, errInterrupted) || exitCode(err) != exitInterrupted {
		t.Fatalf("err %v (exit %d), want interrupted", err, exitCode(err))
	}
	dir := filepath.Join(out, "fmnist_resnet_op13")
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), ".") || strings.Contains(e.Name(), "tmp") || strings.Contains(e.Name(), "partial") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	want := "plan.json prune.json prune.onnx report.html report.json"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("run directory holds %q, want %q", got, want)
	}
	if _, err := graph.Load(filepath.Join(dir, "prune.onnx")); err != nil {
		t.Errorf("finished step's model does not load: %v", err)
	}
	run, err := report.ReadRun(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, s := range run.Steps {
		statuses = append(statuses, s.Name+":"+s.Status)
	}
	if got := strings.Join(statuses, " "); got != "prune:done quant:interrupted check:interrupted" || run.Status != report.RunInterrupted {
		t.Errorf("steps %s, status %s", got, run.Status)
	}
	if res == nil || res.Summary.Status != report.RunInterrupted {
		t.Errorf("summary does not say the run was interrupted: %+v", res)
	}
}

// A recipe's prune step with sensitivity allocation on the trained
// ResNet: the run report carries each group's kind and measured
// sensitivity and draws the allocation (fraction removed per group).
func TestRunReportPlotsAllocation(t *testing.T) {
	recipe := writeRecipe(t, `models:
  - `+fmnistModel2+`
steps:
  - prune:
      ratio: 0.5
      target: params
      criterion: magnitude
      allocate: sensitivity
      calib: `+fmnistCalib+`
`)
	out := t.TempDir()
	if text, code := runCLI(t, "run", recipe, "--out", out, "--json"); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	dir := filepath.Join(out, "fmnist_resnet_op17")
	run, err := report.ReadRun(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	measured, cut := 0, 0
	for _, l := range run.Layers {
		if l.Kind == "" {
			t.Errorf("group %s has no kind", l.Name)
		}
		if l.Sensitivity != nil {
			measured++
		}
		if l.Kept < l.Size {
			cut++
		}
	}
	if measured < 3 || cut == 0 {
		t.Errorf("%d groups with a sensitivity, %d cut: %+v", measured, cut, run.Layers)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	h := string(page)
	if !strings.Contains(h, `id="allocation"`) || !strings.Contains(h, "Allocation: fraction of each coupled group removed") || !strings.Contains(h, "sens. ") {
		t.Errorf("report.html has no allocation chart with sensitivities")
	}
}
