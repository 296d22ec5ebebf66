package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/report"
)

// runOptions are pare run's settings.
type runOptions struct {
	Recipe string
	Models []string
	Out    string
	Jobs   int
	Sweep  []string // --sweep step.option=v1,v2
	Set    []string // --set step.option=v
	JSON   bool
	OrtLib string
	// Progress receives a line per step start and end; nil is quiet.
	Progress io.Writer
	Emit     emitOptions
}

// runResult is what pare run reports: the summary of every run, or the
// job files written with --emit-jobs.
type runResult struct {
	Out     string          `json:"out"`
	Summary *report.Summary `json:"summary,omitempty"`
	Jobs    []string        `json:"jobs,omitempty"`
}

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
			&cli.StringFlag{Name: "image", Value: defaultJobImage, Usage: "--emit-jobs: container image with pare, the models and the data"},
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
				Emit:   emitOptions{Kind: cmd.String("emit-jobs"), Image: cmd.String("image"), Workdir: cmd.String("workdir"), PVC: cmd.String("pvc")},
			}
			if _, ok := terminal(os.Stderr); ok && !opts.JSON {
				opts.Progress = cmd.Root().ErrWriter
			}
			res, err := runRun(ctx, opts)
			if res != nil {
				var perr error
				if opts.JSON {
					enc := json.NewEncoder(cmd.Root().Writer)
					enc.SetIndent("", "  ")
					perr = enc.Encode(res)
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

// runRun checks the recipe, then runs every model at every setting and
// writes the reports. The result comes back with the error of runs that
// did not pass, so that it can be printed.
func runRun(ctx context.Context, o runOptions) (*runResult, error) {
	if o.Jobs < 1 {
		return nil, usageErrorf("run: --jobs must be at least 1, got %d", o.Jobs)
	}
	if o.Out == "" {
		return nil, usageErrorf("run: --out must name a directory")
	}
	r, err := loadRecipe(o.Recipe)
	if err != nil {
		return nil, err
	}
	if err := r.addFlagAxes("sweep", o.Sweep); err != nil {
		return nil, err
	}
	if err := r.addFlagAxes("set", o.Set); err != nil {
		return nil, err
	}
	models, err := r.modelPaths(o.Models)
	if err != nil {
		return nil, err
	}
	if err := r.validate(ctx, models); err != nil {
		return nil, err
	}
	plans := planRuns(models, r.settings())
	if o.Emit.Kind != "" {
		return emitJobs(r, plans, o)
	}
	if err := prepareOut(o.Out, plans); err != nil {
		return nil, err
	}
	start := time.Now()
	runs, errs := runAll(ctx, r, plans, o)
	entries := make([]report.RunEntry, len(runs))
	for i, run := range runs {
		entries[i] = report.RunEntry{Dir: filepath.ToSlash(plans[i].Dir), Run: *run}
	}
	sum := report.NewSummary(version, r.Path, entries)
	sum.Started, sum.Duration = start.UTC().Format(time.RFC3339), report.MillisOf(time.Since(start))
	if err := writeSummaries(o.Out, sum, plans); err != nil {
		return nil, err
	}
	return &runResult{Out: o.Out, Summary: sum}, combineRunErrors(errs, len(plans))
}

// modelPaths lists the recipe's models then the command line's, as
// absolute paths, each once.
func (r *recipe) modelPaths(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range r.Models {
		add(r.resolve(m.Text))
	}
	for _, a := range args {
		if err := readable(a); err != nil {
			return nil, usageErrorf("run: model: %v", unwrapPath(err))
		}
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, usageErrorf("run: model: %v", err)
		}
		add(abs)
	}
	return out, nil
}

// planRuns pairs every model with every setting. A model's name is its
// file name without .onnx, made unique with a suffix.
func planRuns(models []string, settings []setting) []runPlan {
	var plans []runPlan
	used := map[string]int{}
	for _, m := range models {
		name := strings.TrimSuffix(filepath.Base(m), filepath.Ext(m))
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		for _, s := range settings {
			dir := name
			if len(s) > 0 {
				dir = filepath.Join(name, s.slug())
			}
			plans = append(plans, runPlan{Name: name, Input: m, Setting: s, Dir: dir})
		}
	}
	return plans
}

// prepareOut creates the output directory and clears the model
// directories of sweeps (their settings' directories are cleared per
// run).
func prepareOut(out string, plans []runPlan) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	done := map[string]bool{}
	for _, p := range plans {
		if len(p.Setting) > 0 && !done[p.Name] {
			done[p.Name] = true
			if err := prepareRunDir(filepath.Join(out, p.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// runAll runs the plans, up to o.Jobs at a time. A cancelled context
// stops new steps; runs not started yet report every step interrupted.
func runAll(ctx context.Context, r *recipe, plans []runPlan, o runOptions) ([]*report.Run, []error) {
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		if o.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(o.Progress, "pare run: "+format+"\n", args...)
	}
	runs, errs := make([]*report.Run, len(plans)), make([]error, len(plans))
	sem := make(chan struct{}, o.Jobs)
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			runs[i], errs[i] = executeRun(ctx, r, p, o.Out, o.OrtLib, logf)
		}()
	}
	wg.Wait()
	return runs, errs
}

// writeSummaries writes DIR/report.{json,html} over all runs and, in a
// sweep, DIR/<model>/report.{json,html} over that model's settings.
func writeSummaries(out string, sum *report.Summary, plans []runPlan) error {
	byModel := map[string][]report.RunEntry{}
	var order []string
	for i, p := range plans {
		if len(p.Setting) == 0 {
			continue
		}
		if byModel[p.Name] == nil {
			order = append(order, p.Name)
		}
		e := sum.Runs[i]
		e.Dir = filepath.ToSlash(filepath.Base(p.Dir))
		byModel[p.Name] = append(byModel[p.Name], e)
	}
	for _, name := range order {
		ms := report.NewSummary(sum.Pare, sum.Recipe, byModel[name])
		ms.Started, ms.Duration = sum.Started, sum.Duration
		if err := report.WriteSummary(filepath.Join(out, name), ms); err != nil {
			return err
		}
	}
	return report.WriteSummary(out, sum)
}

// runFailure is the error of a pare run whose runs did not all pass; it
// unwraps to the most severe run error, which sets the exit code.
type runFailure struct {
	msg   string
	worst error
}

func (e *runFailure) Error() string { return e.msg }
func (e *runFailure) Unwrap() error { return e.worst }

// combineRunErrors names every run that did not pass; the exit code is
// the most severe: interrupted, then onnxruntime, model, usage, gate.
func combineRunErrors(errs []error, total int) error {
	var msgs []string
	var worst error
	rank := func(err error) int {
		switch c := exitCode(err); c {
		case exitInterrupted:
			return 100
		case exitCheckFailed:
			return 0
		default:
			return c
		}
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		msgs = append(msgs, err.Error())
		if worst == nil || rank(err) > rank(worst) {
			worst = err
		}
	}
	if worst == nil {
		return nil
	}
	return &runFailure{msg: fmt.Sprintf("run: %d of %d runs did not pass:\n  %s", len(msgs), total, strings.Join(msgs, "\n  ")), worst: worst}
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
