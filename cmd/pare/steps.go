package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/pare-dev/pare/recovery"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/pipeline"
	"github.com/pare-dev/pare/pruner"
	"github.com/pare-dev/pare/quant"
	"github.com/pare-dev/pare/report"
)

// recipeSteps are the steps of pare run: pare's own commands, whose
// flags are the steps' options and whose option parsing reads them.
func recipeSteps() pipeline.Steps {
	one := func(_, current string) []string { return []string{current} }
	return pipeline.Steps{
		"prune": {Command: pruneCommand, Args: one, Prepare: preparePrune,
			Managed: map[string]string{"output": "pare run names outputs", "in-place": "pare run never overwrites its input",
				"plan-out": "pare run writes plan.json", "json": "pare run writes report.json",
				"dry-run": "a recipe step writes the model the next step reads"},
			Choices: map[string][]string{"criterion": importance.Criteria, "scope": {"global", "local"}, "allocate": {"global", "sensitivity"},
				"target": {"channels", "params", "macs", "latency"}, "norm": {"l1", "l2"},
				"search": pruner.SearchModes, "obs-order": importance.OBSOrders, "recover-schedule": {recovery.ScheduleCosine, recovery.ScheduleConstant}}},
		"quant": {Command: quantCommand, Args: one, Prepare: prepareQuant,
			Managed: map[string]string{"output": "pare run names outputs", "json": "pare run writes report.json"},
			Choices: map[string][]string{
				"format":    quant.Formats,
				"method":    quant.Methods,
				"rotate":    quant.Rotations,
				"calibrate": quant.Calibrations,
			}},
		"check": {Command: checkCommand, Prepare: prepareCheck,
			Args:    func(input, current string) []string { return []string{input, current} },
			Managed: map[string]string{"json": "pare run writes report.json"}},
		"bench": {Command: benchCommand, Prepare: prepareBench,
			Args: func(input, current string) []string {
				if current == input {
					return []string{input}
				}
				return []string{input, current}
			},
			Managed: map[string]string{"json": "pare run writes report.json"}},
	}
}

func preparePrune(cmd *cli.Command, env *pipeline.Env) (pipeline.Work, error) {
	o := pruneOptionsFrom(cmd)
	o.Output = filepath.Join(env.Stage, env.Base+".onnx")
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.PlanIn == "" && !o.Unstructured && o.NM == "" && !(o.Settings.Ratio > 0) {
		return nil, fmt.Errorf("ratio: want a fraction above 0 (or plan-in, unstructured, nm)")
	}
	o.OrtLib = env.OrtLib
	files := []string{env.Base + ".onnx", env.Base + ".json"}
	if o.PlanIn == "" && !o.Unstructured && o.NM == "" {
		o.PlanOut = filepath.Join(env.Stage, env.Plan)
		files = append(files, env.Plan)
	}
	return func(ctx context.Context) (pipeline.Output, error) {
		res, err := runPrune(ctx, o)
		if err != nil {
			return pipeline.Output{}, err
		}
		rep := env.Report
		rep.Layers = rep.Layers[:0]
		for _, g := range res.Groups {
			rep.Layers = append(rep.Layers, report.Layer{Name: g.Name, Size: int64(g.Size), Kept: int64(g.Kept),
				Sparsity: 1 - float64(g.Kept)/float64(max(g.Size, 1)), Frozen: g.Frozen, Kind: kindOr(g.Kind), Sensitivity: g.Sensitivity})
		}
		for _, l := range res.Layers {
			rep.Layers = append(rep.Layers, report.Layer{Name: l.Node, Size: l.Size, Kept: l.Size - l.Zeros, Sparsity: l.Sparsity})
		}
		return pipeline.Output{Files: files, Model: env.Base + ".onnx"}, writeJSON(filepath.Join(env.Stage, env.Base+".json"), res)
	}, nil
}

func prepareQuant(cmd *cli.Command, env *pipeline.Env) (pipeline.Work, error) {
	o, err := quantOptionsFrom(cmd)
	if err != nil {
		return nil, err
	}
	o.Out = filepath.Join(env.Stage, env.Base+".onnx")
	o.OrtLib, o.Logf = env.OrtLib, env.Logf
	return func(ctx context.Context) (pipeline.Output, error) {
		res, err := runQuant(ctx, o)
		if err != nil {
			return pipeline.Output{}, err
		}
		files := []string{env.Base + ".onnx", env.Base + ".json"}
		return pipeline.Output{Files: files, Model: env.Base + ".onnx"}, writeJSON(filepath.Join(env.Stage, env.Base+".json"), res)
	}, nil
}

// prepareCheck compares the current model with the run's input. A failed
// threshold is a verdict, not a step failure: the step is done and the
// gates say what failed.
func prepareCheck(cmd *cli.Command, env *pipeline.Env) (pipeline.Work, error) {
	o, err := checkOptionsFrom(cmd)
	if err != nil {
		return nil, err
	}
	if !env.Thresholds {
		o.Thresholds = check.Thresholds{}
	}
	o.OrtLib = env.OrtLib
	return func(ctx context.Context) (pipeline.Output, error) {
		rep, err := runCheck(ctx, o)
		if err != nil && (rep == nil || !errors.Is(err, check.ErrFailed)) {
			return pipeline.Output{}, err
		}
		b, a := &env.Report.Before, &env.Report.After
		if acc := rep.Accuracy; acc != nil {
			b.Accuracy, a.Accuracy = report.Finite(float64(acc.Ref)), report.Finite(float64(acc.Cand))
		}
		for _, out := range rep.Outputs {
			if out.Top1 != nil || len(rep.Outputs) == 1 {
				one := 1.0
				b.Agreement, b.Cosine = &one, &one
				if out.Top1 != nil {
					a.Agreement = report.Finite(float64(*out.Top1))
				}
				a.Cosine = report.Finite(float64(out.Cosine))
				break
			}
		}
		return pipeline.Output{Files: []string{env.Base + ".json"}, Gates: pipeline.CheckGates(rep.Gates)}, writeJSON(filepath.Join(env.Stage, env.Base+".json"), rep)
	}, nil
}

// prepareBench times the input and the current model side by side.
func prepareBench(cmd *cli.Command, env *pipeline.Env) (pipeline.Work, error) {
	o, err := benchOptionsFrom(cmd)
	if err != nil {
		return nil, err
	}
	o.OrtLib = env.OrtLib
	return func(ctx context.Context) (pipeline.Output, error) {
		rep, err := runBench(ctx, o)
		if err != nil {
			return pipeline.Output{}, err
		}
		median := func(m benchModel) *int64 {
			if len(m.Timings) == 0 || m.Timings[0].Skipped != "" {
				return nil
			}
			return &m.Timings[0].MedianNs
		}
		env.Report.Before.LatencyNs = median(rep.Models[0])
		env.Report.After.LatencyNs = median(rep.Models[len(rep.Models)-1])
		return pipeline.Output{Files: []string{env.Base + ".json"}}, writeJSON(filepath.Join(env.Stage, env.Base+".json"), rep)
	}, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("run: %s: %w", filepath.Base(path), err)
	}
	return report.WriteFileAtomic(path, append(b, '\n'))
}

// kindOr names a structured group's kind for the report's allocation
// chart ("channels" when the plan left it empty).
func kindOr(k string) string {
	if k == "" {
		return "channels"
	}
	return k
}
