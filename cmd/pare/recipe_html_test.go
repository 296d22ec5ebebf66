package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium renders a page headless and returns its DOM after scripts
// and layout, writing a screenshot to png. The test fails when chromium
// is missing: scripts/setup.sh installs it.
func chromium(t *testing.T, page, png string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed to render the HTML report (scripts/setup.sh installs it): %v", err)
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) []byte {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=1200,1600"}, extra...)
		cmd := exec.Command(bin, append(args, "file://"+abs)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
		defer timer.Stop()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	run("--screenshot=" + png)
	if st, err := os.Stat(png); err != nil || st.Size() < 10_000 {
		t.Fatalf("no screenshot of %s: %v", page, err)
	}
	return string(run("--dump-dom"))
}

// TestRecipeReportRendersInChromium runs a small sweep and renders the
// summary and one run's page in headless Chromium: each has its table and
// at least two SVG charts, the scatter rings the Pareto front. With
// PARE_SCREENSHOTS=DIR the screenshots are kept there for a look.
func TestRecipeReportRendersInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("renders in a headless browser; the full suite runs it")
	}
	out := t.TempDir()
	text, code := runCLI(t, "run", "../../examples/sweep.yaml", "--out", out, "--jobs", "4",
		"--sweep", "prune.ratio=0.1,0.3,0.5")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	shots := os.Getenv("PARE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	for _, page := range []struct{ path, png, table string }{
		{filepath.Join(out, "report.html"), "summary.png", `id="runs"`},
		{filepath.Join(out, "fmnist_resnet_op13", "report.html"), "model.png", `id="runs"`},
		{filepath.Join(out, "fmnist_resnet_op13", "prune.ratio-0.3_prune.criterion-magnitude", "report.html"), "run.png", `id="before-after"`},
	} {
		dom := chromium(t, page.path, filepath.Join(shots, page.png))
		if !strings.Contains(dom, page.table) || !strings.Contains(dom, "<td") {
			t.Errorf("%s: rendered DOM lacks its table", page.path)
		}
		if n := strings.Count(dom, "<svg"); n < 2 {
			t.Errorf("%s: rendered DOM has %d SVG charts, want at least 2", page.path, n)
		}
		if page.png == "summary.png" && (strings.Count(dom, `class="ring`) < 1 || !strings.Contains(dom, "<polyline")) {
			t.Errorf("%s: the scatter does not mark the Pareto front", page.path)
		}
	}
}
