package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func sampleRun(model string, macs int64, acc float64) *Run {
	r := NewRun("test")
	r.Model, r.Input, r.Recipe, r.Status, r.Pass = model, model+".onnx", "r.yaml", RunPassed, true
	pb, pa, mb, sb, sa := int64(1000), int64(600), int64(2000), int64(4096), int64(2048)
	accB := 0.9
	r.Before = Metrics{Params: &pb, MACs: &mb, SizeBytes: &sb, Accuracy: &accB}
	r.After = Metrics{Params: &pa, MACs: &macs, SizeBytes: &sa, Accuracy: &acc}
	r.Layers = []Layer{{Name: "conv<1>", Size: 16, Kept: 11}, {Name: "conv2", Size: 32, Kept: 32, Frozen: "output"}}
	r.Steps = []Step{{Name: "prune", Status: StepDone, Files: []string{"prune.onnx"}}}
	return r
}

func TestReportRunRoundTripAndPage(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun("m", 1200, 0.85)
	if err := WriteRun(dir, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRun(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Schema != Schema || *back.After.MACs != 1200 || back.Layers[0].Kept != 11 || back.Steps[0].Status != StepDone {
		t.Fatalf("round trip lost data: %+v", back)
	}
	if _, err := ReadSummary(filepath.Join(dir, "report.json")); err == nil {
		t.Fatal("ReadSummary accepted a run report")
	}
	var page bytes.Buffer
	if err := WriteRunHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	h := page.String()
	for _, want := range []string{`id="before-after"`, "conv&lt;1&gt;", "11/16 kept", "-40.0%", "-5.00 pt"} {
		if !strings.Contains(h, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	for _, external := range []string{"src=", "<link", "@import", "url("} {
		if strings.Contains(h, external) {
			t.Errorf("run page refers to an external asset (%s)", external)
		}
	}
	if n := strings.Count(h, "<svg"); n != 2 {
		t.Errorf("run page has %d charts, want 2 (change, layers)", n)
	}
}

func TestReportSummaryPageMarksFront(t *testing.T) {
	runs := []RunEntry{
		{Dir: "m/a", Run: *sampleRun("m", 1000, 0.8)},
		{Dir: "m/b", Run: *sampleRun("m", 1500, 0.7)}, // dominated by m/a
		{Dir: "m/c", Run: *sampleRun("m", 1800, 0.88)},
	}
	runs[1].Status = RunGateFailed
	s := NewSummary("test", "r.yaml", runs)
	if s.Status != RunGateFailed {
		t.Errorf("summary status %q, want the worst run's %q", s.Status, RunGateFailed)
	}
	if !s.Runs[0].Pareto || s.Runs[1].Pareto || !s.Runs[2].Pareto {
		t.Errorf("pareto marks %v %v %v, want true false true", s.Runs[0].Pareto, s.Runs[1].Pareto, s.Runs[2].Pareto)
	}
	var page bytes.Buffer
	if err := WriteSummaryHTML(&page, s); err != nil {
		t.Fatal(err)
	}
	h := page.String()
	if n := strings.Count(h, "<svg"); n != 2 {
		t.Errorf("summary page has %d charts, want 2 (scatter, MACs)", n)
	}
	if n := strings.Count(h, `class="ring`); n != 2 {
		t.Errorf("scatter rings %d points, want the 2 on the front", n)
	}
	if !strings.Contains(h, `<polyline`) || !strings.Contains(h, `href="m/b/report.html"`) {
		t.Error("summary page lacks the front line or the link to a run's page")
	}
}

func TestReportTicksCoverRange(t *testing.T) {
	for _, r := range [][2]float64{{0, 1}, {0.12, 0.93}, {3.9e6, 9.4e6}, {-5, 5}, {1e-3, 2e-3}} {
		ts := ticks(r[0], r[1])
		if len(ts) < 2 || len(ts) > 12 || ts[0] > r[0] || ts[len(ts)-1] < r[1]-(ts[1]-ts[0])/2 {
			t.Errorf("ticks(%v, %v) = %v", r[0], r[1], ts)
		}
	}
}
