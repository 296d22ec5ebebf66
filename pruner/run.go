package pruner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// Config is a structured pruning run: the selection settings, the
// criterion's data and the recovery steps.
type Config struct {
	Settings prune.Settings
	Norm     string // magnitude norm, l1 or l2
	// Calib is a .npy/.npz file of calibration inputs, CalibSamples the
	// most samples used (0: all), Batch the samples per run.
	Calib        string
	CalibSamples int
	Batch        int
	// CalibName, when set, is what plans record instead of Calib: the
	// data was made, not read (prune.SyntheticCalib), and a replay
	// makes it again.
	CalibName string
	// SensitivityOrGlobal lets sensitivity allocation fall back to the
	// global ranking, with a note, when no group can be measured (a
	// default chose the allocation, not the user).
	SensitivityOrGlobal bool
	DataFree            bool
	Damping             float64
	// OBSOrder is how the obs criterion orders a group's channels:
	// importance.OBSGreedy (the default, "") or importance.OBSOneShot.
	OBSOrder string
	// Zeroth-order allocation.
	ZOBudget int
	ZOLocal  string
	ZOSMax   float64
	// Recovery.
	RecalibrateBN, Reconstruct bool
	// ReconstructBlocks (with Reconstruct) fits the last layer of each
	// residual block to the dense block's output (recovery/block.go).
	ReconstructBlocks bool
	// FitBlocks (with Reconstruct) trains each block of the pruned
	// model by gradient toward the unpruned model's outputs after the
	// last step, this many Adam steps per block (recovery.FitBlocks;
	// 0: none; below 0: the default search's choice, autoFitSteps).
	FitBlocks int
	// FitOutput weighs the model output in each inner block's loss
	// (recovery.BlockFitConfig.Output; 0: each block's own output;
	// below 0: the default search's choice, autoFitOutput, and 0 on a
	// fixed path).
	FitOutput float64
	// origin, set by RunSteps, makes every step's reconstruction fit
	// the model before the first step (recovery.Origin).
	origin *recovery.Origin
	// keepOrigin makes a one-step RunSteps keep the model before it
	// (the search's candidates, whose pick the block fit refines).
	keepOrigin bool
	// fitPreviousStep makes RunSteps fit each step to the previous
	// step's outputs, as before Origin (a baseline for tests).
	fitPreviousStep bool
	// RecoverKD is the number of distillation steps toward the dense
	// model after pruning (--recover kd --recover-steps N; 0: none).
	RecoverKD int
	// RecoverData is a .npy/.npz file of unlabelled inputs to distil on
	// (--recover-data; empty: the calibration data). More data than the
	// calibration set keeps distillation from fitting the few images
	// the reconstruction already fitted.
	RecoverData string
	// RecoverSchedule is the distillation's learning-rate schedule
	// (--recover-schedule; empty: recovery.DefaultSchedule) and
	// RecoverMixup trains on mixes of two inputs (--recover-mixup; float
	// inputs only).
	RecoverSchedule string
	RecoverMixup    bool
	// DryRun stops after selection: the plan (the chosen allocation) and
	// the criterion's per-group sensitivity are returned and m is left
	// untouched.
	DryRun bool
	// Allocate is how the removal is shared among groups: "" or
	// "global" (one ranking of the criterion's scores) or "sensitivity"
	// (per-group ratios from measured output error, sensitivity.go).
	Allocate string
	// Log receives progress notes (nil: discarded).
	Log io.Writer
}

// Outcome is what a run did.
type Outcome struct {
	Plan          *prune.Plan
	Notes         []string
	ForwardPasses int
	// Sensitivity is the measured sensitivity per group id, for
	// criteria that measure one on calibration data (zeroth); nil
	// otherwise.
	Sensitivity map[int]float64
	// origin is the model before the first step with the rows each
	// layer kept of it, when RunSteps kept one.
	origin *recovery.Origin
}

// Run scores, selects (or replays plan when not nil), compensates,
// applies and recovers, changing m in place. an must be m's analysis.
func Run(ctx context.Context, m *graph.Model, an *prune.Analysis, plan *prune.Plan, cfg Config) (*Outcome, error) {
	out := &Outcome{}
	logf := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		out.Notes = append(out.Notes, s)
		if cfg.Log != nil {
			fmt.Fprintln(cfg.Log, s)
		}
	}
	s := cfg.Settings
	if plan != nil {
		s = plan.Settings
		if o := s.Options; o != nil {
			// A replay redoes what the plan recorded; a --calib given now
			// overrides the recorded path.
			if cfg.Calib == "" {
				cfg.Calib, cfg.CalibSamples = o.Calib, o.CalibSamples
			}
			cfg.DataFree, cfg.Damping = o.DataFree, o.Damping
			cfg.RecalibrateBN, cfg.Reconstruct, cfg.ReconstructBlocks, cfg.RecoverKD = o.RecalibrateBN, o.Reconstruct, o.ReconstructBlocks, o.RecoverKD
			if cfg.RecoverData == "" {
				cfg.RecoverData = o.RecoverData
			}
			if o.RecoverKD > 0 {
				// A plan from before the schedule was recorded
				// distilled at a constant rate.
				cfg.RecoverSchedule, cfg.RecoverMixup = o.RecoverSchedule, o.RecoverMixup
				if cfg.RecoverSchedule == "" {
					cfg.RecoverSchedule = recovery.ScheduleConstant
				}
			}
		}
	}
	crit := s.Criterion
	if cfg.RecoverData != "" && cfg.RecoverKD == 0 {
		return nil, fmt.Errorf("prune: %w: --recover-data without --recover kd", prune.ErrInvalidOption)
	}
	recorded := cfg.Calib
	if cfg.CalibName != "" {
		recorded = cfg.CalibName
	}
	opts := &prune.CriterionOptions{Calib: recorded, CalibSamples: cfg.CalibSamples, DataFree: cfg.DataFree && cfg.Calib == "",
		RecalibrateBN: cfg.RecalibrateBN, Reconstruct: cfg.Reconstruct, ReconstructBlocks: cfg.Reconstruct && cfg.ReconstructBlocks, RecoverKD: cfg.RecoverKD}
	if cfg.RecoverKD > 0 {
		opts.RecoverData = cfg.RecoverData
		opts.RecoverSchedule, opts.RecoverMixup = kdSchedule(cfg), cfg.RecoverMixup
	}
	var src *calib.Source
	if cfg.Calib != "" {
		var err error
		if src, err = calib.Open(cfg.Calib, m, cfg.CalibSamples); err != nil {
			return nil, err // a calib.ErrData naming the file
		}
		defer src.Close()
		opts.CalibSamples = src.Len()
		if src.Note != "" {
			logf("calibration: %s", src.Note)
		}
	} else if (importance.NeedsData(crit) && !(crit == "obs" && cfg.DataFree)) || cfg.RecalibrateBN || cfg.Reconstruct || cfg.RecoverKD > 0 || cfg.Allocate == "sensitivity" {
		return nil, fmt.Errorf("prune: %w: criterion %s%s needs --calib data", prune.ErrInvalidOption, crit, recoveryNote(cfg))
	}
	data := importance.Data{Src: src, DataFree: cfg.DataFree, Batch: cfg.Batch}
	var dense *graph.Model
	if cfg.RecalibrateBN || cfg.Reconstruct || cfg.RecoverKD > 0 {
		var err error
		if dense, err = graph.Clone(m); err != nil {
			return nil, err
		}
	}
	var obs *importance.OBS
	if crit == "obs" {
		var err error
		if obs, err = importance.NewOBSFor(ctx, m, an, data, cfg.Damping, s.Selects); err != nil {
			return nil, err
		}
		opts.Damping, opts.Compensate = obs.Damping, true
		obs.Greedy = cfg.OBSOrder != importance.OBSOneShot
	}
	// FLAP's statistics also serve a replayed plan's bias compensation.
	var flap *importance.FLAP
	if crit == "flap" {
		var err error
		if flap, err = importance.NewFLAP(ctx, m, an, data); err != nil {
			return nil, err
		}
	}
	if plan == nil {
		var sc importance.Scorer
		var err error
		switch {
		case obs != nil:
			sc = obs
		case flap != nil:
			sc = flap
		default:
			var notes []string
			sc, notes, err = importance.NewCriterion(ctx, m, an, crit, importance.CriterionConfig{
				Norm: cfg.Norm, Seed: cfg.Settings.Seed, ZOBudget: cfg.ZOBudget, ZOLocal: cfg.ZOLocal, ZOSMax: cfg.ZOSMax}, data)
			if err != nil {
				return nil, err
			}
			out.Notes = append(out.Notes, notes...)
		}
		s.Criterion = sc.Name()
		if _, ok := sc.(importance.Magnitude); ok {
			s.Aggregation = importance.Aggregation
		}
		s.Options = opts
		if reflect.DeepEqual(*opts, prune.CriterionOptions{}) {
			s.Options = nil // data-free criteria without recovery: nothing to record
		}
		if _, ok := sc.(importance.Allocator); ok && cfg.Allocate == "sensitivity" {
			return nil, fmt.Errorf("prune: %w: criterion %s allocates by itself; --allocate sensitivity needs a scoring criterion", prune.ErrInvalidOption, crit)
		}
		if alloc, ok := sc.(importance.Allocator); ok {
			if plan, err = alloc.Plan(ctx, an, s); err != nil {
				return nil, err
			}
			if z, ok := sc.(*importance.Zeroth); ok {
				out.ForwardPasses, out.Sensitivity = z.Passes, z.Scores
				logf("zeroth: %d forward passes (budget %d)", z.Passes, z.Budget)
			}
		} else {
			scores, err := importance.ScoreAll(ctx, sc, an)
			if err != nil {
				return nil, err
			}
			switch cfg.Allocate {
			case "", "global":
				if plan, err = an.Select(scores, s); err != nil {
					return nil, err
				}
			case "sensitivity":
				if len(s.KindRatios) > 0 {
					// Kind ratios set the budget, not the split: what
					// they remove together (params, or MACs with
					// --target macs) is shared across every kind by
					// sensitivity.
					ks, note, err := kindBudget(an, s, scores)
					if err != nil {
						return nil, err
					}
					s = ks
					logf("allocate: %s", note)
				}
				var comp func(*graph.Graph, *prune.Plan) error
				if obs != nil {
					comp = func(g *graph.Graph, p *prune.Plan) error { _, err := obs.Compensate(g, p); return err }
				}
				sens, err := measureSensitivity(ctx, m, an, s, scores, data, comp)
				if err != nil {
					return nil, err
				}
				// Why the global ranking replaces the allocation, "" when
				// it does not.
				var global string
				if len(sens) == 0 && cfg.SensitivityOrGlobal {
					global = "no group can be measured for sensitivity (each is too narrow to lose a probe's share)"
				} else {
					plan, err = allocateBySensitivity(an, s, scores, sens)
					if le := (*landingError)(nil); errors.As(err, &le) {
						global = le.Error()
					} else if err != nil {
						return nil, err
					}
				}
				if global != "" {
					if plan, err = an.Select(scores, s); err != nil {
						return nil, err
					}
					logf("allocate: %s; one global ranking instead", global)
					break
				}
				out.Sensitivity = map[int]float64{}
				for _, g := range sens {
					out.Sensitivity[g.ID] = g.Error
				}
				logf("allocate: sensitivity of %d groups measured on %d samples (relative output error with %.0f%% of a group removed)", len(sens), min(data.BatchSize(), src.Len()), 100*min(probeFraction, s.MaxLayerRatio))
			default:
				return nil, fmt.Errorf("prune: %w: --allocate %q (want global or sensitivity)", prune.ErrInvalidOption, cfg.Allocate)
			}
		}
		for _, n := range importance.ScoringNotes(sc) {
			logf("%s", n)
		}
		if obs != nil {
			for _, n := range obs.Notes {
				logf("obs: %s", n)
			}
			if n := obs.GreedyNote(); n != "" {
				logf("obs: %s", n)
			}
		}
	}
	if cfg.DryRun {
		out.Plan = plan
		return out, nil
	}
	if obs != nil {
		n, err := obs.Compensate(an.Graph(), plan)
		if err != nil {
			return nil, err
		}
		logf("obs: compensated %d consumer layers", n)
		obs.Release()
	}
	// FLAP's bias shifts are measured on the plan before it is applied
	// and added after.
	var compensate func() (int, error)
	if flap != nil {
		if shifts := flap.Shifts(plan); len(shifts) > 0 {
			compensate = func() (int, error) { return importance.Compensate(m, shifts) }
		}
		for _, n := range flap.Notes {
			logf("flap: %s", n)
		}
	}
	if err := an.ApplyPlan(plan); err != nil {
		return nil, err
	}
	if compensate != nil {
		n, err := compensate()
		if err != nil {
			return nil, err
		}
		logf("flap: mean contribution of the removed channels added to the bias of %d layers", n)
	}
	if cfg.RecalibrateBN {
		notes, err := recovery.RecalibrateBN(ctx, m, dense, plan, src, data.BatchSize())
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			logf("recalibrate-bn: %s", n)
		}
	}
	if cfg.Reconstruct {
		notes, err := recovery.ReconstructFrom(ctx, m, dense, plan, src, data.BatchSize(), cfg.ReconstructBlocks, cfg.origin)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			logf("reconstruct: %s", n)
		}
	}
	if cfg.RecoverKD > 0 {
		notes, err := distill(ctx, m, dense, src, cfg)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			logf("recover kd: %s", n)
		}
	}
	out.Plan = plan
	return out, nil
}

// distill runs --recover kd on m toward dense, on cfg.RecoverData when
// given, else on the calibration source src.
func distill(ctx context.Context, m, dense *graph.Model, src *calib.Source, cfg Config) ([]string, error) {
	if cfg.RecoverData != "" {
		kdSrc, err := calib.Open(cfg.RecoverData, m, 0)
		if err != nil {
			return nil, err // a calib.ErrData naming the file
		}
		defer kdSrc.Close()
		src = kdSrc
	}
	notes, err := recovery.Distill(ctx, m, dense, src, recovery.DistillConfig{Steps: cfg.RecoverKD, Batch: kdBatch,
		Schedule: kdSchedule(cfg), Mixup: cfg.RecoverMixup, Seed: kdSeed})
	if err == nil && cfg.RecoverData != "" && src.Note != "" {
		notes = append(notes, "data: "+src.Note)
	}
	return notes, err
}

// kdSchedule is the distillation's learning-rate schedule.
func kdSchedule(cfg Config) string {
	if cfg.RecoverSchedule == "" {
		return recovery.DefaultSchedule
	}
	return cfg.RecoverSchedule
}

// kdSeed draws the distillation's mixes: a fixed seed, so that a run is
// repeatable.
const kdSeed = 1

func recoveryNote(cfg Config) string {
	switch {
	case cfg.RecalibrateBN:
		return " with --recalibrate-bn"
	case cfg.Reconstruct:
		return " with --reconstruct"
	case cfg.RecoverKD > 0:
		return " with --recover kd"
	case cfg.Allocate == "sensitivity":
		return " with --allocate sensitivity"
	}
	return ""
}

// kdBatch is the samples per distillation step.
const kdBatch = 32
