package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pare-dev/pare/report"
)

// yamlDocs decodes every document of a multi-document YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs = append(docs, d)
	}
	return docs
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// TestEmitJobsK8s writes a ConfigMap and Job per setting; the recipe a
// job carries runs as it is, on its one model and setting.
func TestRunEmitJobsK8s(t *testing.T) {
	out := t.TempDir()
	cwd, _ := os.Getwd()
	text, code := runCLI(t, "run", "../../examples/sweep.yaml", "--emit-jobs", "k8s", "--out", out,
		"--sweep", "prune.ratio=0.1,0.3", "--set", "prune.criterion=random", "--image", "registry.example/pare:1",
		"--workdir", cwd, "--pvc", "results")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	if len(files) != 2 {
		t.Fatalf("%d job files, want 2 (one per setting): %v", len(files), files)
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		t.Error("--emit-jobs ran the recipe")
	}
	docs := yamlDocs(t, files[0])
	if len(docs) != 2 || docs[0]["kind"] != "ConfigMap" || docs[1]["kind"] != "Job" {
		t.Fatalf("want a ConfigMap and a Job, got %v", docs)
	}
	name := dig(docs[1], "metadata", "name").(string)
	c := dig(docs[1], "spec", "template", "spec", "containers", 0)
	args, _ := dig(c, "args").([]any)
	if dig(c, "image") != "registry.example/pare:1" || len(args) < 4 || args[0] != "run" || args[3] != "/out/"+name ||
		dig(docs[1], "spec", "template", "spec", "volumes", 1, "persistentVolumeClaim", "claimName") != "results" ||
		dig(docs[1], "spec", "template", "spec", "volumes", 0, "configMap", "name") != name {
		t.Errorf("job spec: %v", docs[1])
	}
	recipe := dig(docs[0], "data", "recipe.yaml").(string)
	if strings.Contains(recipe, "\nsweep:") || !strings.Contains(recipe, "ratio: \"0.1\"") || !strings.Contains(recipe, "criterion: random") {
		t.Errorf("job recipe is not reduced to its setting:\n%s", recipe)
	}
	// Run the job's recipe here, as the job would in the image.
	path := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(path, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	runOut := t.TempDir()
	if text, code := runCLI(t, "run", path, "--out", runOut); code != exitOK {
		t.Fatalf("job recipe: exit %d:\n%s", code, text)
	}
	sum, err := report.ReadSummary(filepath.Join(runOut, "report.json"))
	if err != nil || len(sum.Runs) != 1 || sum.Runs[0].Steps[0].Options[0].Value != "random" && sum.Runs[0].Steps[0].Options[1].Value != "random" {
		t.Fatalf("job run: %+v, %v", sum, err)
	}
}

// TestEmitJobsArgo writes one Workflow per model with a step per
// setting, run in parallel, each template carrying its recipe.
func TestRunEmitJobsArgo(t *testing.T) {
	out := t.TempDir()
	text, code := runCLI(t, "run", "../../examples/sweep.yaml", "--emit-jobs", "argo", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.argo.yaml"))
	if len(files) != 1 {
		t.Fatalf("want one workflow, got %v", files)
	}
	wf := yamlDocs(t, files[0])[0]
	templates, _ := dig(wf, "spec", "templates").([]any)
	group, _ := dig(wf, "spec", "templates", 0, "steps", 0).([]any)
	if wf["kind"] != "Workflow" || len(templates) != 11 || len(group) != 10 {
		t.Fatalf("workflow with %d templates and %d parallel steps, want 11 and 10", len(templates), len(group))
	}
	var names []string
	for i := 1; i < len(templates); i++ {
		names = append(names, dig(templates[i], "name").(string))
		data, _ := dig(templates[i], "inputs", "artifacts", 0, "raw", "data").(string)
		var rec map[string]any
		if err := yaml.Unmarshal([]byte(data), &rec); err != nil || rec["sweep"] != nil || rec["dir"] != "/work" ||
			len(rec["models"].([]any)) != 1 || len(rec["steps"].([]any)) != 2 {
			t.Errorf("template %d recipe (%v):\n%s", i, err, data)
		}
	}
	slices.Sort(names)
	if len(slices.Compact(names)) != 10 {
		t.Errorf("template names are not unique: %v", names)
	}
}
