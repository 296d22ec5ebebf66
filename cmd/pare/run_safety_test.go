package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pare-dev/pare/graph"
)

// pare run's directory safety: whatever the model names and whatever is
// already in or beside --out, pare run creates, changes and removes
// nothing outside --out, and inside it only what it wrote.

// safetySetup makes root/models/<names> (copies of the small Conv
// model), a recipe that prunes, and files beside --out: a user file and
// an existing report, as a parent folder of --out may hold.
func safetySetup(t *testing.T, names ...string) (root, out, recipe string, models []string) {
	t.Helper()
	root = t.TempDir()
	out = filepath.Join(root, "out")
	mdir := filepath.Join(root, "models")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		models = append(models, writeModel(t, mdir, n, convProto()))
	}
	recipe = filepath.Join(root, "recipe.yaml")
	for name, data := range map[string]string{
		recipe:                             "steps:\n  - prune: {ratio: 0.25}\n",
		filepath.Join(root, "notes.txt"):   "mine",
		filepath.Join(root, "report.json"): `{"schema": "someone else's"}`,
	} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, out, recipe, models
}

// besideOut records everything in root except --out.
func besideOut(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p == filepath.Join(root, "out") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			got[p] = string(b)
		} else {
			got[p] = "dir"
		}
		return nil
	})
	return got
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: %s changed or removed", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s created outside --out", what, p)
		}
	}
}

func TestRunHostileModelNames(t *testing.T) {
	names := []string{"...onnx", "..onnx", ".onnx", "m.onnx", "report.json.onnx", "a b;c.onnx"}
	root, out, recipe, models := safetySetup(t, names...)
	before := besideOut(t, root)
	args := append([]string{"run", recipe, "--out", out}, models...)
	if text, code := runCLI(t, args...); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	sameTree(t, "hostile names", before, besideOut(t, root))
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	dirs := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dirs++
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("run directory %q is hidden or a dot name", e.Name())
		}
		for _, f := range []string{"report.json", "prune.onnx"} {
			if _, err := os.Stat(filepath.Join(out, e.Name(), f)); err != nil {
				t.Errorf("run %s: %v", e.Name(), err)
			}
		}
	}
	if dirs != len(names) {
		t.Errorf("%d run directories for %d models (names must be unique)", dirs, len(names))
	}
	for _, f := range []string{"report.json", "report.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("summary %s: %v", f, err)
		}
	}
}

// A run directory holding files pare did not write is refused, left as
// it was, and gets no report; files pare did not write at the top of
// --out are left alone; a second run clears only its own outputs.
func TestRunRemovesOnlyWhatItWrote(t *testing.T) {
	root, out, recipe, models := safetySetup(t, "m.onnx", "n.onnx")
	if text, code := runCLI(t, "run", recipe, "--out", out, models[0], models[1]); code != exitOK {
		t.Fatalf("first run: exit %d:\n%s", code, text)
	}
	user := filepath.Join(out, "n", "mine.txt")
	top := filepath.Join(out, "keep.txt")
	for _, p := range []string{user, top} {
		if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nReport, _ := os.ReadFile(filepath.Join(out, "n", "report.json"))
	before := besideOut(t, root)
	_, code := runCLI(t, "run", recipe, "--out", out, models[0], models[1])
	if code != exitUsage {
		t.Errorf("second run: exit %d, want %d for the folder holding a user file", code, exitUsage)
	}
	sameTree(t, "second run", before, besideOut(t, root))
	for _, p := range []string{user, top} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine" {
			t.Errorf("%s: %v %q", p, err, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "n", "report.json")); string(b) != string(nReport) {
		t.Error("the refused run rewrote its report.json")
	}
	if _, err := graph.Load(filepath.Join(out, "m", "prune.onnx")); err != nil {
		t.Errorf("the other run's output: %v", err)
	}
}

// A sweep of 10⁵ settings is refused at once, before any run.
func TestRunSweepCapped(t *testing.T) {
	root, out, _, models := safetySetup(t, "m.onnx")
	vals := func(f string) string {
		var v []string
		for i := range 10 {
			v = append(v, fmt.Sprintf(f, i))
		}
		return "[" + strings.Join(v, ", ") + "]"
	}
	recipe := filepath.Join(root, "sweep.yaml")
	text := "steps:\n  - prune: {ratio: 0.25}\nsweep:\n" +
		"  prune.ratio: " + vals("0.%d") + "\n" +
		"  prune.seed: " + vals("%d") + "\n" +
		"  prune.max-layer-ratio: " + vals("0.8%d") + "\n" +
		"  prune.round-to: " + vals("%d") + "\n" +
		"  prune.zo-budget: " + vals("1%d") + "\n"
	if err := os.WriteFile(recipe, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, code := runCLI(t, "run", recipe, "--out", out, models[0])
	if code != exitUsage || !strings.Contains(got, "limit of 10000") {
		t.Errorf("exit %d:\n%s", code, got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("the refused sweep created --out")
	}
}
