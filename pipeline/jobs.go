package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pare-dev/pare/report"
)

// DefaultJobImage is the image emitted job specs run unless --image says
// otherwise: one with pare on its PATH and the models and data under
// --workdir.
const DefaultJobImage = "pare:latest"

// EmitOptions configure --emit-jobs.
type EmitOptions struct {
	Kind    string // k8s or argo
	Image   string
	Workdir string
	PVC     string
}

// Where emitted jobs find their recipe and put their results.
const (
	jobRecipeDir = "/etc/pare"
	jobOutDir    = "/out"
)

// emitJobs writes one job spec per run instead of running: a Kubernetes
// ConfigMap (the run's recipe) and Job per model and setting, or one
// Argo Workflow per model with a step per setting. Each job runs pare
// run on a recipe reduced to its single model and setting, so a batch
// engine fans the sweep out and pare stays a single-machine tool.
func emitJobs(r *Recipe, plans []runPlan, o Options) (*Result, error) {
	if o.Emit.Kind != "k8s" && o.Emit.Kind != "argo" {
		return nil, usageErrorf("run: --emit-jobs %q: want k8s or argo", o.Emit.Kind)
	}
	if !filepath.IsAbs(o.Emit.Workdir) {
		return nil, usageErrorf("run: --workdir %q: want an absolute path in the image", o.Emit.Workdir)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	res := &Result{Out: o.Out}
	write := func(name string, docs ...any) error {
		var b strings.Builder
		fmt.Fprintf(&b, "# Emitted by pare %s from %s; apply with kubectl apply -f (Argo: argo submit).\n", o.Version, r.Path)
		for i, d := range docs {
			if i > 0 {
				b.WriteString("---\n")
			}
			y, err := yaml.Marshal(d)
			if err != nil {
				return fmt.Errorf("run: %s: %w", name, err)
			}
			b.Write(y)
		}
		path := filepath.Join(o.Out, name)
		if err := report.WriteFileAtomic(path, []byte(b.String())); err != nil {
			return fmt.Errorf("run: %w", err)
		}
		res.Jobs = append(res.Jobs, path)
		return nil
	}
	if o.Emit.Kind == "k8s" {
		for _, p := range plans {
			text, err := r.emitRecipe(p, o.Emit.Workdir)
			if err != nil {
				return nil, err
			}
			name := jobName(p)
			if err := write(name+".yaml", configMap(name, p, text), k8sJob(name, p, o.Emit)); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	var model []runPlan
	for i, p := range plans {
		model = append(model, p)
		if i+1 < len(plans) && plans[i+1].Name == p.Name {
			continue
		}
		wf, err := argoWorkflow(r, model, o.Emit)
		if err != nil {
			return nil, err
		}
		if err := write(dnsLabel("pare-"+p.Name)+".argo.yaml", wf); err != nil {
			return nil, err
		}
		model = nil
	}
	return res, nil
}

// emitRecipe writes the recipe for one run: the one model, the setting's
// values in its steps, no sweep, and paths relative to the directory
// pare was run from, which the image's workdir stands for.
func (r *Recipe) emitRecipe(p runPlan, workdir string) (string, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	rel := func(abs string) string {
		if rp, err := filepath.Rel(cwd, abs); err == nil && !strings.HasPrefix(rp, "..") {
			return filepath.ToSlash(rp)
		}
		return abs
	}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	steps := &yaml.Node{Kind: yaml.SequenceNode}
	for i, st := range r.Steps {
		opts := mapping()
		for _, o := range p.Setting.stepOpts(r, i) {
			v := o.Value.Text
			if fileOptions[o.Name] {
				v = rel(r.resolve(v))
			}
			opts.Content = append(opts.Content, str(o.Name), str(v))
		}
		steps.Content = append(steps.Content, mapping(str(st.Kind), opts))
	}
	root := mapping(
		str("dir"), str(workdir),
		str("models"), &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{str(rel(p.Input))}},
		str("steps"), steps,
	)
	if len(r.Gates) > 0 {
		gates := mapping()
		for _, g := range r.Gates {
			gates.Content = append(gates.Content, str(g.Name), str(g.Text))
		}
		root.Content = append(root.Content, str("gates"), gates)
	}
	root.HeadComment = fmt.Sprintf("pare run recipe for %s, from %s", p.label(), r.Path)
	b, err := yaml.Marshal(root)
	if err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	return string(b), nil
}

var dnsUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel makes a Kubernetes name (lower case, digits and '-', at most
// 63 characters); a long name keeps its start and gets a hash of the
// whole, so that names stay unique.
func dnsLabel(s string) string {
	n := strings.Trim(dnsUnsafe.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:4])
	if len(n) > 54 {
		n = strings.TrimRight(n[:54], "-")
	}
	return n + "-" + h
}

func jobName(p runPlan) string {
	if len(p.Setting) == 0 {
		return dnsLabel("pare-" + p.Name)
	}
	return dnsLabel("pare-" + p.Name + "-" + p.Setting.slug())
}

func labels(p runPlan) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "pare", "app.kubernetes.io/component": "run",
		"pare.dev/model": dnsLabel(p.Name)}
}

func configMap(name string, p runPlan, recipe string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "labels": labels(p)},
		"data":     map[string]string{"recipe.yaml": recipe},
	}
}

func jobContainer(name string, e EmitOptions) map[string]any {
	return map[string]any{
		"name": "pare", "image": e.Image, "workingDir": e.Workdir,
		"command": []string{"pare"},
		"args":    []string{"run", jobRecipeDir + "/recipe.yaml", "--out", jobOutDir + "/" + name},
		"volumeMounts": []map[string]any{
			{"name": "recipe", "mountPath": jobRecipeDir, "readOnly": true},
			{"name": "out", "mountPath": jobOutDir},
		},
	}
}

func outVolume(e EmitOptions) map[string]any {
	if e.PVC != "" {
		return map[string]any{"name": "out", "persistentVolumeClaim": map[string]string{"claimName": e.PVC}}
	}
	return map[string]any{"name": "out", "emptyDir": map[string]any{}}
}

func k8sJob(name string, p runPlan, e EmitOptions) map[string]any {
	return map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": name, "labels": labels(p)},
		"spec": map[string]any{
			// A failed gate is a verdict; retrying would not change it.
			"backoffLimit": 0,
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels(p)},
				"spec": map[string]any{
					"restartPolicy": "Never",
					"containers":    []any{jobContainer(name, e)},
					"volumes": []any{
						map[string]any{"name": "recipe", "configMap": map[string]string{"name": name}},
						outVolume(e),
					},
				},
			},
		},
	}
}

// argoWorkflow runs one model's settings as parallel steps; each step's
// template carries its recipe as a raw artifact, so the workflow needs
// nothing else.
func argoWorkflow(r *Recipe, plans []runPlan, e EmitOptions) (map[string]any, error) {
	var steps []any
	templates := []any{map[string]any{"name": "main", "steps": []any{nil}}}
	for _, p := range plans {
		text, err := r.emitRecipe(p, e.Workdir)
		if err != nil {
			return nil, err
		}
		name := jobName(p)
		c := jobContainer(name, e)
		c["volumeMounts"] = []map[string]any{{"name": "out", "mountPath": jobOutDir}}
		delete(c, "name")
		templates = append(templates, map[string]any{
			"name": name,
			"inputs": map[string]any{"artifacts": []any{map[string]any{
				"name": "recipe", "path": jobRecipeDir + "/recipe.yaml", "raw": map[string]string{"data": text},
			}}},
			"container": c,
		})
		steps = append(steps, map[string]any{"name": name, "template": name})
	}
	templates[0].(map[string]any)["steps"] = []any{steps} // one group: the settings run in parallel
	return map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
		"metadata": map[string]any{"generateName": dnsLabel("pare-"+plans[0].Name) + "-", "labels": labels(plans[0])},
		"spec": map[string]any{
			"entrypoint": "main",
			"volumes":    []any{outVolume(e)},
			"templates":  templates,
		},
	}, nil
}
