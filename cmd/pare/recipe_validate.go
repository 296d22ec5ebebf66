package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/check"
)

// validate checks what needs the whole recipe: the models, gates against
// the steps that measure them, and every step's options at every sweep
// setting, parsed by the step's own command. Nothing has run yet.
func (r *recipe) validate(ctx context.Context, models []string) error {
	if len(models) == 0 {
		return usageErrorf("run: %s: no models (list them under models: or give them after the recipe)", r.Path)
	}
	checkStep, benchStep := r.lastStep("check"), r.lastStep("bench")
	for _, g := range r.Gates {
		switch {
		case g.Name == gateMaxLatencyRatio && benchStep < 0:
			return recipeErr(g.Where, "gates: %s needs a bench step", g.Name)
		case isCheckGate(g.Name) && checkStep < 0:
			return recipeErr(g.Where, "gates: %s needs a check step", g.Name)
		case isCheckGate(g.Name):
			for _, o := range r.Steps[checkStep].Opts {
				if o.Name == g.Name {
					return recipeErr(g.Where, "gates: %s is also set on the check step (%s); keep one", g.Name, o.Value.Where)
				}
			}
		}
	}
	for _, s := range r.settings() {
		if g := r.gate(gateMaxAccDrop); g != nil && !hasOpt(s.stepOpts(r, checkStep), "labels") {
			return recipeErr(g.Where, "gates: max-acc-drop needs labels: on the check step (%s)", r.Steps[checkStep].Where)
		}
		for i := range r.Steps {
			if err := r.validateStep(ctx, s, i); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *recipe) validateStep(ctx context.Context, s setting, i int) error {
	const model = "model.onnx" // placeholder; the real paths come per run
	var err error
	switch r.Steps[i].Kind {
	case "prune":
		_, err = r.pruneOpts(ctx, s, i, model, "out.onnx")
	case "quant":
		_, err = r.quantOpts(ctx, s, i, model, "out.onnx")
	case "check":
		_, err = r.checkOpts(ctx, s, i, model, model)
	case "bench":
		_, err = r.benchOpts(ctx, s, i, model)
	}
	return err
}

func (r *recipe) lastStep(kind string) int {
	last := -1
	for i, st := range r.Steps {
		if st.Kind == kind {
			last = i
		}
	}
	return last
}

func isCheckGate(name string) bool {
	return name == gateMinTop1 || name == gateMaxAccDrop || name == gateMinCos || name == gateMaxPPL
}

func hasOpt(opts []recipeOpt, name string) bool {
	return slices.ContainsFunc(opts, func(o recipeOpt) bool { return o.Name == name })
}

// stepErr places a step's option error on the step's line.
func (r *recipe) stepErr(s setting, i int, err error) error {
	at := ""
	if len(s) > 0 {
		at = " (sweep " + s.String() + ")"
	}
	return recipeErr(r.Steps[i].Where, "%s%s: %v", r.Steps[i].Kind, at, err)
}

func (r *recipe) parse(ctx context.Context, s setting, i int, extra []recipeOpt, positional ...string) (*cli.Command, error) {
	opts := append(s.stepOpts(r, i), extra...)
	cmd, err := parseStep(ctx, r.Steps[i].Kind, stepArgs(r, opts, positional...))
	if err != nil {
		return nil, r.stepErr(s, i, err)
	}
	return cmd, nil
}

func (r *recipe) pruneOpts(ctx context.Context, s setting, i int, model, out string) (pruneOptions, error) {
	cmd, err := r.parse(ctx, s, i, nil, model)
	if err != nil {
		return pruneOptions{}, err
	}
	o := pruneOptionsFrom(cmd)
	o.Output = out
	if err := o.validate(); err != nil {
		return o, r.stepErr(s, i, err)
	}
	if o.PlanIn == "" && !o.Unstructured && o.NM == "" && !(o.Settings.Ratio > 0) {
		return o, r.stepErr(s, i, fmt.Errorf("ratio: want a fraction above 0 (or plan-in, unstructured, nm)"))
	}
	return o, nil
}

func (r *recipe) quantOpts(ctx context.Context, s setting, i int, model, out string) (quantOptions, error) {
	cmd, err := r.parse(ctx, s, i, nil, model)
	if err != nil {
		return quantOptions{}, err
	}
	o, err := quantOptionsFrom(cmd)
	if err != nil {
		return o, r.stepErr(s, i, err)
	}
	o.Out = out
	return o, nil
}

// checkOpts are the options of check step i; the last check step also
// takes the recipe's check gates. A check step without thresholds
// measures only (pare check's default allclose gate is not applied: a
// pruned model never passes it).
func (r *recipe) checkOpts(ctx context.Context, s setting, i int, ref, cand string) (checkOptions, error) {
	var extra []recipeOpt
	if i == r.lastStep("check") {
		for _, g := range r.Gates {
			if isCheckGate(g.Name) {
				extra = append(extra, recipeOpt{Name: g.Name, Value: recipeValue{Text: g.Text, Where: g.Where}})
			}
		}
	}
	cmd, err := r.parse(ctx, s, i, extra, ref, cand)
	if err != nil {
		return checkOptions{}, err
	}
	o, err := checkOptionsFrom(cmd)
	if err != nil {
		return o, r.stepErr(s, i, err)
	}
	all := append(s.stepOpts(r, i), extra...)
	if !slices.ContainsFunc(thresholdOptions, func(n string) bool { return hasOpt(all, n) }) {
		o.Thresholds = check.Thresholds{}
	}
	return o, nil
}

func (r *recipe) benchOpts(ctx context.Context, s setting, i int, models ...string) (benchOptions, error) {
	cmd, err := r.parse(ctx, s, i, nil, models...)
	if err != nil {
		return benchOptions{}, err
	}
	o, err := benchOptionsFrom(cmd)
	if err != nil {
		return o, r.stepErr(s, i, err)
	}
	return o, nil
}
