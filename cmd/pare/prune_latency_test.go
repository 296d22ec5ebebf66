package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pare-dev/pare/prune"
)

var measuredPlan = regexp.MustCompile(`latency measured, plan \d: estimate \d+\.\d\d×, measured \d+\.\d\d× \(batch 1 \d+\.\d\d×, [^;]+; batch 8 \d+\.\d\d×`)

// TestPruneTargetLatency: pare prune --target latency on resnet18_w16
// measures the per-layer table into the user cache dir, writes a model
// pruned for 30% less latency, and a second run takes
// every figure from the cache; each run times the plan's pruned model
// whole against dense at batch 1 and 8 and says so; more than one step
// is refused.
func TestPruneTargetLatency(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	const model = "../../fixtures/models/resnet18_w16_op13.onnx"
	dir := t.TempDir()
	notes := func(out string) []string {
		text, code := runCLI(t, "prune", model, "-o", out, "--ratio", "0.3", "--target", "latency", "--json")
		if code != exitOK {
			t.Fatalf("exit %d:\n%s", code, text)
		}
		var res struct {
			Notes    []string `json:"notes"`
			Settings struct {
				Target string `json:"target"`
			} `json:"settings"`
		}
		if err := json.Unmarshal([]byte(text), &res); err != nil {
			t.Fatalf("%v:\n%s", err, text)
		}
		if res.Settings.Target != "latency" {
			t.Errorf("plan target %q", res.Settings.Target)
		}
		if _, err := os.Stat(out); err != nil {
			t.Fatal(err)
		}
		return res.Notes
	}
	first := strings.Join(notes(filepath.Join(dir, "a.onnx")), "\n")
	t.Log(first)
	if !strings.Contains(first, "latency table:") || strings.Contains(first, " 0 measurements made") || !strings.Contains(first, "latency estimate") {
		t.Errorf("first run notes: %s", first)
	}
	// One to latencyRounds plans measured whole, each with a ratio
	// (not a timing assertion: the machine may be shared).
	if n := len(measuredPlan.FindAllString(first, -1)); n < 1 || n > latencyRounds || n != strings.Count(first, "latency measured, plan ") {
		t.Errorf("first run: %d plans measured whole: %s", n, first)
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "pare", "latency", "*.json"))
	if len(files) != 1 {
		t.Errorf("cache files %v, want one", files)
	}
	second := strings.Join(notes(filepath.Join(dir, "b.onnx")), "\n")
	if !strings.Contains(second, " 0 measurements made") {
		t.Errorf("second run measured again: %s", second)
	}
	text, code := runCLI(t, "prune", model, "-o", filepath.Join(dir, "c.onnx"), "--ratio", "0.3", "--target", "latency", "--steps", "2")
	if code != exitUsage {
		t.Errorf("--steps 2 --target latency: exit %d, want %d:\n%s", code, exitUsage, text)
	}
}

// TestCorrectLatencyConverges: the budget correction lands within its
// tolerance on maps from the table's estimate to the measured latency
// like those measured on untrained torchvision models at a 50% target
// (MobileNetV2: measured falls 2.3 times faster than the estimate;
// the ViT: measured 0.05 under the estimate; EfficientNet-B0: a kink),
// with no runtime: plans are estimates, measurements a function of them.
// Where the measured latency jumps past the goal, the plan measured
// closest is kept.
func TestCorrectLatencyConverges(t *testing.T) {
	cases := []struct {
		name    string
		ratio   float64
		measure func(est float64) float64
	}{
		{"steep", 0.5, func(e float64) float64 { return 0.41 + 2.3*(e-0.41) }},
		{"under", 0.5, func(e float64) float64 { return e - 0.05 }},
		{"kink", 0.5, func(e float64) float64 {
			if e > 0.45 {
				return 0.47 + 2.5*(e-0.45)
			}
			return e + 0.02
		}},
		{"proportional", 0.3, func(e float64) float64 { return 1.2 * e }},
	}
	for _, c := range cases {
		rounds := 0
		selectPlan := func(r float64) (*prune.Plan, error) {
			return &prune.Plan{Before: prune.Cost{LatencyUs: 1000}, After: prune.Cost{LatencyUs: 1000 * (1 - r)}}, nil
		}
		measure := func(p *prune.Plan) (float64, string, error) {
			rounds++
			return c.measure(p.After.LatencyUs / p.Before.LatencyUs), "", nil
		}
		p, notes, err := correctLatency(c.ratio, selectPlan, measure)
		if err != nil {
			t.Fatal(err)
		}
		got := c.measure(p.After.LatencyUs / p.Before.LatencyUs)
		t.Logf("%s: %d plans, measured %.3f: %s", c.name, rounds, got, strings.Join(notes, "; "))
		if math.Abs(got-(1-c.ratio)) > latencyTolerance || rounds > latencyRounds || len(notes) != rounds {
			t.Errorf("%s: %d plans (%d notes), kept plan measured %.3f, want %.2f ± %.2f", c.name, rounds, len(notes), got, 1-c.ratio, latencyTolerance)
		}
	}
	gap := func(e float64) float64 {
		if e > 0.45 {
			return e + 0.1
		}
		return e + 0.02
	}
	var measured []float64
	p, _, err := correctLatency(0.5, func(r float64) (*prune.Plan, error) {
		return &prune.Plan{Before: prune.Cost{LatencyUs: 1000}, After: prune.Cost{LatencyUs: 1000 * (1 - r)}}, nil
	}, func(p *prune.Plan) (float64, string, error) {
		measured = append(measured, gap(p.After.LatencyUs/p.Before.LatencyUs))
		return measured[len(measured)-1], "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := gap(p.After.LatencyUs / p.Before.LatencyUs)
	for _, m := range measured {
		if math.Abs(m-0.5) < math.Abs(got-0.5) {
			t.Errorf("gap: kept a plan measured %.3f, %.3f was measured too (%v)", got, m, measured)
		}
	}
}
