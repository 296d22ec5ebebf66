package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/pipeline"
)

// runOptions are pare run's settings; the engine is package pipeline.
type runOptions struct {
	Recipe string
	Models []string
	Out    string
	Jobs   int
	Sweep  []string
	Set    []string
	JSON   bool
	OrtLib string
	// Progress receives a line per step start and end; nil is quiet.
	Progress io.Writer
	Emit     pipeline.EmitOptions
}

// runResult is what pare run reports.
type runResult = pipeline.Result

func runCommand() *cli.Command {
	return &cli.Command{
		Name:         "run",
		Usage:        "take models through a recipe of prune, quant, check and bench steps, with gates and reports",
		ArgsUsage:    "RECIPE.yaml [MODEL...]",
		OnUsageError: onUsageError,
		Description: "Runs each model (from the recipe's models: and the command line) through the recipe's\n" +
			"steps, in parallel up to --jobs, writing DIR/<model>/ (models, plan, report.json, report.html)\n" +
			"and DIR/report.json and report.html over all runs. A sweep (recipe sweep: or --sweep) runs\n" +
			"every setting of its grid. Exit 1 when a gate fails (the other runs still finish), 2 for a\n" +
			"recipe mistake (with its line), 130 when interrupted. docs/CLI.md describes recipes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "pare-run", Usage: "output directory"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, Usage: "runs in parallel"},
			&cli.StringSliceFlag{Name: "sweep", Usage: "step.option=V1,V2,...: add (or replace) a sweep axis"},
			&cli.StringSliceFlag{Name: "set", Usage: "step.option=V: fix an option (replaces the sweep axis of that key)"},
			&cli.StringFlag{Name: "emit-jobs", Usage: "k8s|argo: write one job spec per model and setting to --out instead of running"},
			&cli.StringFlag{Name: "image", Value: pipeline.DefaultJobImage, Usage: "--emit-jobs: container image with pare, the models and the data"},
			&cli.StringFlag{Name: "workdir", Value: "/work", Usage: "--emit-jobs: directory in the image that recipe paths are relative to"},
			&cli.StringFlag{Name: "pvc", Usage: "--emit-jobs: PersistentVolumeClaim mounted at /out for the results (default: an emptyDir)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text; no progress"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() < 1 {
				return usageErrorf("run takes a RECIPE argument (and optional MODELs)")
			}
			opts := runOptions{
				Recipe: cmd.Args().First(), Models: cmd.Args().Tail(), Out: cmd.String("out"), Jobs: cmd.Int("jobs"),
				Sweep: cmd.StringSlice("sweep"), Set: cmd.StringSlice("set"), JSON: cmd.Bool("json"),
				OrtLib: cmd.Root().String("ort-lib"),
				Emit:   pipeline.EmitOptions{Kind: cmd.String("emit-jobs"), Image: cmd.String("image"), Workdir: cmd.String("workdir"), PVC: cmd.String("pvc")},
			}
			pctx, done := withProgressBar(ctx, opts.JSON)
			res, err := runRun(pctx, opts)
			done()
			if res != nil {
				var perr error
				if opts.JSON {
					perr = printJSON(cmd.Root().Writer, res)
				} else {
					perr = printRunText(cmd.Root().Writer, res)
				}
				if err == nil {
					err = perr
				}
			}
			return err
		},
	}
}

// runRun runs a recipe with pare's commands as its steps.
func runRun(ctx context.Context, o runOptions) (*runResult, error) {
	return pipeline.Run(ctx, pipeline.Options{
		Recipe: o.Recipe, Models: o.Models, Out: o.Out, Jobs: o.Jobs, Sweep: o.Sweep, Set: o.Set,
		OrtLib: o.OrtLib, Progress: o.Progress, Emit: o.Emit,
		Steps: recipeSteps(), Version: version, Severity: runSeverity,
	})
}

// runSeverity ranks the errors of runs that did not pass: interrupted,
// then onnxruntime, model, usage, and a failed gate last.
func runSeverity(err error) int {
	switch c := exitCode(err); c {
	case exitInterrupted:
		return 100
	case exitCheckFailed:
		return 0
	default:
		return c
	}
}

func printRunText(w io.Writer, res *runResult) error {
	if res.Summary == nil {
		for _, j := range res.Jobs {
			fmt.Fprintln(w, j)
		}
		fmt.Fprintf(w, "\n%d job specs in %s\n", len(res.Jobs), res.Out)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tsetting\tstatus\tparams\tMACs\tsize\taccuracy\tagreement\tPareto\tfailed gates")
	for _, e := range res.Summary.Runs {
		set := "-"
		if len(e.Setting) > 0 {
			parts := make([]string, len(e.Setting))
			for i, p := range e.Setting {
				parts[i] = p.Key + "=" + p.Value
			}
			set = strings.Join(parts, " ")
		}
		var failed []string
		for _, g := range e.Gates {
			if !g.Pass {
				failed = append(failed, g.Gate)
			}
		}
		pareto := ""
		if e.Pareto {
			pareto = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Model, set, e.Status,
			change(e.Before.Params, e.After.Params), change(e.Before.MACs, e.After.MACs), change(e.Before.SizeBytes, e.After.SizeBytes),
			pct(e.After.Accuracy), pct(e.After.Agreement), pareto, strings.Join(failed, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nreport: %s\n", filepath.Join(res.Out, "report.html"))
	return nil
}

func change(before, after *int64) string {
	if before == nil || after == nil || *before == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", 100*float64(*after-*before)/float64(*before))
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100**v)
}
