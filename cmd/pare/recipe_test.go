package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/pipeline"
)

// TestRecipeMalformed: every recipe mistake exits 2 before anything
// runs, with a message that starts with the recipe's file and line.
func TestRecipeMalformed(t *testing.T) {
	head := "models: [" + fmnistModel + "]\n"
	for _, tc := range []struct {
		name, recipe string
		line         int
		want         string
	}{
		{"yaml syntax", head + "steps:\n  - prune:\n\tratio: 0.3\n", 4, "cannot start any token"},
		{"not a mapping", "- prune\n", 1, "a recipe is a mapping"},
		{"unknown key", head + "stpes:\n  - check\n", 2, `unknown key "stpes"`},
		{"no steps", head, 1, "no steps"},
		{"unknown step", head + "steps:\n  - check\n  - prnue: {ratio: 0.3}\n", 4, `unknown step "prnue"`},
		{"unknown option", head + "steps:\n  - prune:\n      ratoi: 0.3\n", 4, `unknown option "ratoi"`},
		{"option wrong type", head + "steps:\n  - prune:\n      ratio: lots\n", 4, "ratio wants a number"},
		{"integer option", head + "steps:\n  - quant:\n      bits: 8.5\n", 4, "bits wants a integer"},
		{"bool option", head + "steps:\n  - prune:\n      ratio: 0.3\n      unstructured: maybe\n", 5, "unstructured wants a bool"},
		{"choice", head + "steps:\n  - quant: {format: int3}\n", 3, `format "int3" is not one of`},
		{"criterion", head + "steps:\n  - prune: {ratio: 0.3, criterion: vibes}\n", 3, "criterion"},
		{"managed option", head + "steps:\n  - prune: {ratio: 0.3, output: x.onnx}\n", 3, `"output" is not allowed`},
		{"options not a mapping", head + "steps:\n  - prune: 0.3\n", 3, "options are a mapping"},
		{"duplicate option", head + "steps:\n  - prune:\n      ratio: 0.3\n      ratio: 0.5\n", 5, "given twice (first on line 4)"},
		{"missing calib", head + "steps:\n  - quant:\n      calib: nowhere.npy\n", 4, "nowhere.npy"},
		{"missing model", "models:\n  - a.onnx\n  - nowhere.onnx\nsteps: [check]\n", 2, "a.onnx"},
		{"gate out of range", head + "steps: [check]\ngates:\n  min-top1: 1.5\n", 4, "min-top1 must be in [0, 1]"},
		{"gate not a number", head + "steps: [check]\ngates:\n  min-cos: high\n", 4, "min-cos wants a number"},
		{"unknown gate", head + "steps: [check]\ngates:\n  max-loss: 2\n", 4, `unknown gate "max-loss"`},
		{"bad size gate", head + "steps: [check]\ngates:\n  max-size: big\n", 4, "max-size wants a positive size"},
		{"gate without its step", head + "steps:\n  - prune: {ratio: 0.3}\ngates:\n  min-top1: 0.5\n", 5, "min-top1 needs a check step"},
		{"latency gate without bench", head + "steps: [check]\ngates:\n  max-latency-ratio: 1\n", 4, "needs a bench step"},
		{"acc drop without labels", head + "steps:\n  - check\ngates:\n  max-acc-drop: 1\n", 5, "max-acc-drop needs labels"},
		{"gate and option twice", head + "steps:\n  - check: {min-cos: 0.9}\ngates:\n  min-cos: 0.5\n", 5, "also set on the check step"},
		{"no ratio", head + "steps:\n  - prune: {criterion: random}\n", 3, "ratio: want a fraction above 0"},
		{"command's own check", head + "steps:\n  - bench: {batch: \"0\"}\n", 3, "--batch wants positive integers"},
		{"sweep unknown step", head + "steps: [check]\nsweep:\n  prune.ratio: [0.1]\n", 4, "no prune step"},
		{"sweep bad value", head + "steps:\n  - prune: {ratio: 0.3}\nsweep:\n  prune.ratio: [0.1, half]\n", 5, `ratio wants a number, got "half"`},
		{"sweep not a list", head + "steps:\n  - prune: {ratio: 0.3}\nsweep:\n  prune.ratio: 0.1\n", 5, "non-empty list"},
		{"sweep key", head + "steps:\n  - prune: {ratio: 0.3}\nsweep:\n  ratio: [0.1]\n", 5, "want step.option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeRecipe(t, tc.recipe)
			out, code := runCLI(t, "run", path, "--out", dir)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, out)
			}
			loc := path + ":" + strconv.Itoa(tc.line) + ":"
			if !strings.Contains(out, loc) || !strings.Contains(out, tc.want) {
				t.Fatalf("message lacks %q or %q:\n%s", loc, tc.want, out)
			}
		})
	}
}

// TestRecipeDefaultsComeFromCommands: options a recipe leaves out take
// the command's flag defaults, and file options resolve against the
// recipe's directory.
func TestRecipeDefaultsComeFromCommands(t *testing.T) {
	r, err := pipeline.Parse("/data/r.yaml", []byte("steps:\n  - prune: {ratio: 0.25, round-to: 8}\n  - quant: {bits: 4, format: nbits}\n"), recipeSteps())
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := r.Command(context.Background(), 0, "m.onnx")
	if err != nil {
		t.Fatal(err)
	}
	p := pruneOptionsFrom(cmd)
	s := p.Settings
	if s.Ratio != 0.25 || s.RoundTo != 8 || s.Criterion != "obs" || !p.SynthCalib || s.MaxLayerRatio != 0.8 || s.Target != "channels" || p.Norm != "l2" {
		t.Errorf("prune options %+v", p)
	}
	cmd, err = r.Command(context.Background(), 1, "m.onnx")
	if err != nil {
		t.Fatal(err)
	}
	q, err := quantOptionsFrom(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if q.Bits != 4 || q.Format != "nbits" || q.Block != 32 || q.Method != "rtn" || !q.PerChannel || q.CalibSamples != 64 {
		t.Errorf("quant options %+v", q)
	}
}

// TestRecipeAcceptsEveryCommandOption: every option of pare prune and
// pare quant (less those pare run sets itself), with every value an
// enumerated option takes, is accepted in a recipe step and passes the
// checks made before anything runs. A flag added to either command
// without a sample value here fails the test.
func TestRecipeAcceptsEveryCommandOption(t *testing.T) {
	calib, err := filepath.Abs(fmnistCalib)
	if err != nil {
		t.Fatal(err)
	}
	model, err := filepath.Abs(fmnistModel)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]map[string]string{
		"prune": {"ratio": "0.3", "norm": "l1", "max-layer-ratio": "0.5", "round-to": "8", "ignore": "^none$",
			"plan-in": calib, "sparsity": "0.5", "nm": "2:4", "seed": "1", "calib": calib, "calib-samples": "8",
			"zo-budget": "10", "zo-local": "wanda", "zo-smax": "0.5", "heads": "0.5", "mlp": "0.5", "embed": "0.5",
			"kv-groups": "0.5", "input-shape": "input=1,1,28,28", "steps": "2", "recover": "kd", "recover-steps": "5", "fit-blocks": "0", "fit-output": "0.5",
			"recover-data": calib},
		"quant": {"bits": "8", "block": "64", "calib": calib, "calib-samples": "8", "exclude": "^none$",
			"accuracy-level": "4", "seed": "1", "per-channel": "false", "input-shape": "input=1,1,28,28"},
	}
	steps := recipeSteps()
	for _, kind := range []string{"prune", "quant"} {
		k := steps[kind]
		for _, f := range k.Command().Flags {
			name := f.Names()[0]
			if _, managed := k.Managed[name]; managed {
				continue
			}
			values := k.Choices[name]
			if values == nil {
				v, ok := samples[kind][name]
				if _, isBool := f.(*cli.BoolFlag); isBool && !ok {
					v, ok = "true", true
				}
				if !ok {
					t.Errorf("%s --%s: no sample value in this test", kind, name)
					continue
				}
				values = []string{v}
			}
			for _, v := range values {
				opts := fmt.Sprintf("%s: %q", name, v)
				// Each mode with the settings it needs: prune refuses
				// a --ratio its sparse modes would ignore.
				switch {
				case kind != "prune" || name == "ratio":
				case name == "unstructured":
					opts = "sparsity: 0.5, " + opts
				case name == "sparsity":
					opts = "unstructured: true, " + opts
				case name == "nm":
				case name == "search":
					// It bounds the default search, which --calib alone runs.
					opts = fmt.Sprintf("ratio: 0.3, calib: %q, %s", calib, opts)
				case name == "keep-order":
					// It keeps an order the data would otherwise change.
					opts = fmt.Sprintf("ratio: 0.3, calib: %q, %s", calib, opts)
				case name == "obs-order":
					// It orders the obs criterion's channels.
					opts = fmt.Sprintf("ratio: 0.3, criterion: obs, calib: %q, %s", calib, opts)
				default:
					opts = "ratio: 0.3, " + opts
				}
				text := fmt.Sprintf("steps:\n  - %s: {%s}\n", kind, opts)
				r, err := pipeline.Parse("r.yaml", []byte(text), steps)
				if err == nil {
					err = r.Validate(context.Background(), []string{model})
				}
				if err != nil {
					t.Errorf("%s --%s=%s refused in a recipe: %v", kind, name, v, err)
				}
			}
		}
	}
	for _, c := range importance.Criteria {
		if !slices.Contains(steps["prune"].Choices["criterion"], c) {
			t.Errorf("criterion %s is not offered to recipes", c)
		}
	}
	if len(importance.Criteria) < 8 {
		t.Errorf("criteria %v: the data-aware ones are missing", importance.Criteria)
	}
}
