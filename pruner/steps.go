package pruner

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// RunSteps prunes m toward cfg's ratio in steps: step k removes what
// brings m to k/steps of the requested reduction of the original
// parameters (MACs with --target macs; channels are scheduled like
// parameters). Every step analyses the already-pruned model again, so
// OBS Hessians, Wanda norms and sensitivities are collected on it, and
// runs the step's compensation and recovery (--reconstruct fits the
// step's pruned layers, and every layer changed by an earlier step, to
// the outputs of m as it was before the first step: recovery.Origin).
// --recover kd runs once, after the last step, toward m as it was before
// the first: distilling after every step toward the model that step
// started from would train on a teacher already pruned, and spend the
// steps on models that are pruned again. The outcome is the last
// step's, with every step's notes.
func RunSteps(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, steps int) (*Outcome, error) {
	s := cfg.Settings
	switch {
	case steps < 1:
		return nil, fmt.Errorf("prune: %w: --steps %d (want 1 or more)", prune.ErrInvalidOption, steps)
	case steps > 1 && len(s.KindRatios) > 0:
		return nil, fmt.Errorf("prune: %w: --steps shares --ratio; --heads, --kv-groups, --mlp and --embed are one-step", prune.ErrInvalidOption)
	case steps > 1 && s.Target == "latency":
		return nil, fmt.Errorf("prune: %w: --steps counts params or MACs on the pruned model between steps; --target latency is one-step", prune.ErrInvalidOption)
	case steps > 1 && cfg.DryRun:
		return nil, fmt.Errorf("prune: %w: --dry-run shows one step's allocation; --steps needs the pruned model between steps", prune.ErrInvalidOption)
	}
	cost := func() (float64, error) {
		c, err := graph.Count(m)
		if err != nil {
			return 0, err
		}
		if s.Target == "macs" {
			return float64(c.MACs), nil
		}
		return float64(c.Params), nil
	}
	start, err := cost()
	if err != nil {
		return nil, err
	}
	if cfg.FitBlocks > 0 && (!cfg.Reconstruct || cfg.ReconstructBlocks || cfg.fitPreviousStep || cfg.Calib == "") {
		return nil, fmt.Errorf("prune: %w: --fit-blocks refines --reconstruct (without --reconstruct-blocks) and needs --calib data", prune.ErrInvalidOption)
	}
	if err := fitRefusal(m, cfg); err != nil {
		return nil, err
	}
	if (steps > 1 || cfg.FitBlocks > 0 || cfg.keepOrigin) && cfg.Reconstruct && !cfg.ReconstructBlocks && !cfg.fitPreviousStep {
		if cfg.origin, err = recovery.NewOrigin(m); err != nil {
			return nil, err
		}
	}
	var unpruned *graph.Model // the teacher of a multi-step --recover kd
	kdCfg := cfg
	if steps > 1 && cfg.RecoverKD > 0 {
		if cfg.Calib == "" {
			return nil, fmt.Errorf("prune: %w: --recover kd needs --calib data", prune.ErrInvalidOption)
		}
		if cfg.origin != nil {
			unpruned = cfg.origin.Model
		} else if unpruned, err = cloneModel(m); err != nil {
			return nil, err
		}
		cfg.RecoverKD, cfg.RecoverData = 0, ""
	}
	var all []string
	var out *Outcome
	now := start // the cost before step k
	for k := 1; k <= steps; k++ {
		want := start * (1 - float64(k)*s.Ratio/float64(steps))
		c := cfg
		c.Settings.Ratio = 1 - want/now
		if c.Settings.Ratio <= 0 {
			continue
		}
		an, err := prune.Analyze(m, opts)
		if err != nil {
			return nil, err
		}
		if out, err = Run(ctx, m, an, nil, c); err != nil {
			return nil, fmt.Errorf("step %d of %d: %w", k, steps, err)
		}
		if steps > 1 {
			after, err := cost()
			if err != nil {
				return nil, err
			}
			all = append(all, fmt.Sprintf("step %d of %d: removed %.1f%% of the remaining %s (asked %.1f%%; %.1f%% of the original removed so far)",
				k, steps, 100*(1-after/now), s.Target, 100*c.Settings.Ratio, 100*(1-after/start)))
			now = after
		}
		all = append(all, out.Notes...)
	}
	if out == nil {
		return nil, fmt.Errorf("prune: %w: nothing to remove", prune.ErrTarget)
	}
	if cfg.FitBlocks > 0 && !cfg.DryRun {
		notes, err := fitBlocks(ctx, m, cfg)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			all = append(all, "fit blocks: "+n)
		}
		if o := out.Plan.Settings.Options; o != nil {
			o.FitBlocks, o.FitOutput = cfg.FitBlocks, max(cfg.FitOutput, 0)
		}
	}
	if unpruned != nil {
		notes, err := distillAfterSteps(ctx, m, unpruned, kdCfg)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			all = append(all, "recover kd: "+n)
		}
		if o := out.Plan.Settings.Options; o != nil {
			// The plan records the distillation, as a one-step run's does.
			o.RecoverKD, o.RecoverData = kdCfg.RecoverKD, kdCfg.RecoverData
			o.RecoverSchedule, o.RecoverMixup = kdSchedule(kdCfg), kdCfg.RecoverMixup
		}
	}
	out.Notes = all
	out.origin = cfg.origin
	return out, nil
}

// distillAfterSteps runs --recover kd on m toward the unpruned model, on
// the calibration data of cfg (or its --recover-data).
func distillAfterSteps(ctx context.Context, m, unpruned *graph.Model, cfg Config) ([]string, error) {
	src, err := calib.Open(cfg.Calib, m, cfg.CalibSamples)
	if err != nil {
		return nil, err // a calib.ErrData naming the file
	}
	defer src.Close()
	return distill(ctx, m, unpruned, src, cfg)
}

// fitBlocks trains the pruned model's blocks toward the model before the
// first step (cfg.origin), on the calibration data.
func fitBlocks(ctx context.Context, m *graph.Model, cfg Config) ([]string, error) {
	src, err := calib.Open(cfg.Calib, m, cfg.CalibSamples)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return fitToOrigin(ctx, m, cfg.origin, src, recovery.BlockFitConfig{Steps: cfg.FitBlocks, Output: max(cfg.FitOutput, 0)})
}

// fitRefusal refuses an explicit --fit-blocks on a model the fit cannot
// cut, before anything is pruned.
func fitRefusal(m *graph.Model, cfg Config) error {
	if cfg.FitBlocks <= 0 {
		return nil
	}
	var src *calib.Source
	if cfg.Calib != "" {
		// One sample says which inputs the data leaves to be filled.
		s, err := calib.Open(cfg.Calib, m, 1)
		if err != nil {
			return err
		}
		defer s.Close()
		src = s
	}
	if err := recovery.Fittable(m, src); err != nil {
		return fmt.Errorf("prune: %w: --fit-blocks: %v", prune.ErrInvalidOption, err)
	}
	return nil
}

// fitToOrigin runs the block fit on m toward the model o kept from
// before pruning.
func fitToOrigin(ctx context.Context, m *graph.Model, o *recovery.Origin, src *calib.Source, fc recovery.BlockFitConfig) ([]string, error) {
	if o == nil {
		return []string{"block fit skipped: the pruned path kept no unpruned model"}, nil
	}
	return recovery.FitBlocks(ctx, m, o.Model, o.RowsOf, src, fc)
}

// The default search's block fit (Config.FitBlocks < 0) takes
// AutoFitEpochs passes over the calibration samples per block, at least
// AutoFitSteps steps, within AutoFitBudget multiply-accumulates: the
// pruned model's MACs per sample × the batch × the steps, about what
// the fit's forward passes cost (the block fit runs in float64
// gorgonia: 1–3 minutes of CPU at 2e10 on the Fashion-MNIST models).
// More samples buy more steps because the fit gains more from them
// than from more passes over few (docs/RESULTS.md, "Block fitting by
// gradient"). Below AutoFitSteps within the budget the fit is skipped
// with a note.
const (
	AutoFitSteps  = 200
	AutoFitEpochs = 40
	AutoFitBudget = 1e11
)

// From AutoFitLargeSamples calibration samples the budget is
// AutoFitLargeBudget, and the fit weighs the model output in each inner
// block's loss (BlockFitConfig.Output) at AutoFitOutputWeight when the
// fit with it stays within that budget, the passes through the rest of
// the model counted (recovery.FitMACs: 2-4.5 times the fit alone on the
// models measured). On 1024 samples the term gained on every model
// measured (0.2-1.1 points on the classifiers, a point of top-1 on the
// decoder); on 256 it gained nothing beyond noise (docs/RESULTS.md,
// "Block fitting by gradient"). Four times the data buys a fit that
// reads the whole model.
const (
	AutoFitLargeSamples = 1024
	AutoFitLargeBudget  = 5e11
	AutoFitOutputWeight = 0.5
)

// fitBudget is the default fit's budget on samples calibration samples
// (a variable for tests).
var fitBudget = func(samples int) float64 {
	if samples >= AutoFitLargeSamples {
		return AutoFitLargeBudget
	}
	return AutoFitBudget
}

// autoFitSteps returns the default search's block fit steps for the
// pruned model m on the calibration samples of src, and a note when it
// skips the fit.
func autoFitSteps(m *graph.Model, src *calib.Source) (int, string) {
	return autoFitStepsWithin(m, src, fitBudget(src.Len()))
}

// autoFitStepsWithin is autoFitSteps within the given budget.
func autoFitStepsWithin(m *graph.Model, src *calib.Source, budget float64) (int, string) {
	if recovery.Fittable(m, src) != nil {
		return 0, "" // the default stays silent where blocks cannot be cut
	}
	macs, err := recovery.SampleMACs(m, src)
	if err != nil {
		return 0, fmt.Sprintf("skipped by default: %v", err)
	}
	return fitStepsWithin(macs, src.Len(), budget)
}

// autoFitOutput returns the default's output weight for a block fit of
// steps steps of the pruned model m toward ref on src, the steps the fit
// takes with it, and a note when the term is left out for its cost.
// With cut (the steps are the default's too), the steps are cut to what
// the budget allows with the term, down to AutoFitSteps: on the models
// measured the term gained more than the steps it cost (docs/RESULTS.md,
// "Block fitting by gradient": the decoder at 70% 59.4% top-1 with the
// term and 214 steps, 58.6% with 600 steps without it).
func autoFitOutput(m, ref *graph.Model, src *calib.Source, steps int, cut bool) (float64, int, string) {
	if steps <= 0 || ref == nil {
		return 0, steps, ""
	}
	if src.Len() < AutoFitLargeSamples {
		// outputWeightFor's first case, which reads no MACs: the count
		// (shape inference over the whole model) is not needed.
		return outputWeightFor(0, src.Len(), steps, cut)
	}
	macs, err := recovery.FitMACs(m, ref, src, true)
	if err != nil {
		return 0, steps, fmt.Sprintf("output term skipped by default: %v", err)
	}
	return outputWeightFor(macs, src.Len(), steps, cut)
}

// outputWeightFor is autoFitOutput for a fit of macs multiply-accumulates
// per sample and step with the output term.
func outputWeightFor(macs int64, samples, steps int, cut bool) (float64, int, string) {
	if samples < AutoFitLargeSamples {
		// Say so: more unlabelled samples are the user's cheapest lever.
		return 0, steps, fmt.Sprintf("output term off by default below %d calibration samples (%d given): from %d on the fit also weighs the model output, which gained 0.2-1.1 points at 70%% removed on the models measured (--fit-output %g runs it now)",
			AutoFitLargeSamples, samples, AutoFitLargeSamples, AutoFitOutputWeight)
	}
	perStep := float64(macs) * float64(recovery.DefaultBlockFitBatch)
	budget := fitBudget(samples)
	if perStep*float64(steps) <= budget {
		return AutoFitOutputWeight, steps, ""
	}
	if within := int(budget / perStep); cut && within >= AutoFitSteps {
		return AutoFitOutputWeight, within, ""
	}
	least := steps
	if cut {
		least = AutoFitSteps
	}
	return 0, steps, fmt.Sprintf("output term skipped by default: %.2g multiply-accumulates (%d per sample through the rest of the model × %d samples × %d steps) past the budget of %.0g; --fit-output %g runs it",
		perStep*float64(least), macs, recovery.DefaultBlockFitBatch, least, budget, AutoFitOutputWeight)
}

// fitStepsWithin is autoFitStepsWithin for a model of macs
// multiply-accumulates per sample fitted on samples samples.
func fitStepsWithin(macs int64, samples int, budget float64) (int, string) {
	batch := recovery.DefaultBlockFitBatch
	steps := max(AutoFitSteps, (AutoFitEpochs*samples+batch-1)/batch)
	perStep := float64(macs) * float64(batch)
	if perStep > 0 {
		steps = min(steps, int(budget/perStep))
	}
	if steps < AutoFitSteps {
		return 0, fmt.Sprintf("skipped by default: %.2g multiply-accumulates (%d MACs per sample × %d samples × %d steps) past the budget of %.0g; --fit-blocks N runs it",
			perStep*AutoFitSteps, macs, batch, AutoFitSteps, budget)
	}
	return steps, ""
}
