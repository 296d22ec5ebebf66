package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var measuredPlan = regexp.MustCompile(`latency measured, plan \d: estimate \d+\.\d\d×, measured \d+\.\d\d× `)

// TestPruneTargetLatency: pare prune --target latency on resnet18_w16
// measures the per-layer table into the user cache dir, writes a model
// whose latency estimate is 30% below dense, and a second run takes
// every figure from the cache; each run times the plan's pruned model
// whole against dense and says so; more than one step is refused.
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
	// One to three plans measured whole, each with a ratio (not a
	// timing assertion: the machine may be shared).
	if n := len(measuredPlan.FindAllString(first, -1)); n < 1 || n > 3 || n != strings.Count(first, "latency measured, plan ") {
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
