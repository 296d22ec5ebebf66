package pipeline

import (
	"context"
	"slices"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/report"
)

// Validate checks what needs the whole recipe: the models, gates against
// the steps that measure them, and every step's options at every sweep
// setting, parsed by the step's own command. Nothing has run yet.
func (r *Recipe) Validate(ctx context.Context, models []string) error {
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

func (r *Recipe) validateStep(ctx context.Context, s setting, i int) error {
	const model = "model.onnx" // placeholder; the real paths come per run
	_, err := r.prepare(ctx, s, i, &Env{Input: model, Current: model, Base: "out", Plan: "plan.json", Logf: func(string, ...any) {}, Report: &report.Run{}})
	return err
}

func (r *Recipe) lastStep(kind string) int {
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

func hasOpt(opts []option, name string) bool {
	return slices.ContainsFunc(opts, func(o option) bool { return o.Name == name })
}

// stepErr places a step's option error on the step's line.
func (r *Recipe) stepErr(s setting, i int, err error) error {
	at := ""
	if len(s) > 0 {
		at = " (sweep " + s.String() + ")"
	}
	return recipeErr(r.Steps[i].Where, "%s%s: %v", r.Steps[i].Kind, at, err)
}

// prepare parses step i's options at setting s with the step's own
// command and prepares its work for env. The last check step also takes
// the recipe's check gates. A check step without thresholds measures
// only (pare check's default allclose gate is not applied: a pruned
// model never passes it).
func (r *Recipe) prepare(ctx context.Context, s setting, i int, env *Env) (Work, error) {
	k := r.kinds[r.Steps[i].Kind]
	opts := s.stepOpts(r, i)
	if r.Steps[i].Kind == "check" && i == r.lastStep("check") {
		for _, g := range r.Gates {
			if isCheckGate(g.Name) {
				opts = append(opts, option{Name: g.Name, Value: value{Text: g.Text, Where: g.Where}})
			}
		}
	}
	env.Thresholds = slices.ContainsFunc(thresholdOptions, func(n string) bool { return hasOpt(opts, n) })
	cmd, err := parseStep(ctx, k, stepArgs(r, opts, k.Args(env.Input, env.Current)...))
	if err != nil {
		return nil, r.stepErr(s, i, err)
	}
	w, err := k.Prepare(cmd, env)
	if err != nil {
		return nil, r.stepErr(s, i, err)
	}
	return w, nil
}

// Command parses step i's options, as written in the recipe, with the
// step's command and the given positional arguments.
func (r *Recipe) Command(ctx context.Context, i int, positional ...string) (*cli.Command, error) {
	cmd, err := parseStep(ctx, r.kinds[r.Steps[i].Kind], stepArgs(r, r.Steps[i].Opts, positional...))
	if err != nil {
		return nil, r.stepErr(nil, i, err)
	}
	return cmd, nil
}
