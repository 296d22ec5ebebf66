package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/report"
)

// Options are pare run's settings.
type Options struct {
	Recipe string
	Models []string
	Out    string
	Jobs   int
	Sweep  []string // --sweep step.option=v1,v2
	Set    []string // --set step.option=v
	OrtLib string
	// Progress receives a line per step start and end; nil is quiet.
	Progress io.Writer
	Emit     EmitOptions
	// Steps are the step kinds recipes may use.
	Steps Steps
	// Version names the tool in reports and emitted jobs.
	Version string
	// Severity ranks errors; the error of a run that did not pass is
	// that of its most severe run.
	Severity func(error) int
}

// ErrInterrupted marks a run stopped by its context.
var ErrInterrupted = errors.New("interrupted")

// Result is what pare run reports: the summary of every run, or the
// job files written with --emit-jobs.
type Result struct {
	Out     string          `json:"out"`
	Summary *report.Summary `json:"summary,omitempty"`
	Jobs    []string        `json:"jobs,omitempty"`
}

// Run checks the recipe, then runs every model at every setting and
// writes the reports. The result comes back with the error of runs that
// did not pass, so that it can be printed.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Jobs < 1 {
		return nil, usageErrorf("run: --jobs must be at least 1, got %d", o.Jobs)
	}
	if o.Out == "" {
		return nil, usageErrorf("run: --out must name a directory")
	}
	r, err := Load(o.Recipe, o.Steps)
	if err != nil {
		return nil, err
	}
	if err := r.addFlagAxes("sweep", o.Sweep); err != nil {
		return nil, err
	}
	if err := r.addFlagAxes("set", o.Set); err != nil {
		return nil, err
	}
	if n, ok := r.gridSize(); !ok {
		return nil, usageErrorf("run: the sweep has %s settings, over the limit of %d", n, MaxSweepPoints)
	}
	models, err := r.modelPaths(o.Models)
	if err != nil {
		return nil, err
	}
	if err := r.Validate(ctx, models); err != nil {
		return nil, err
	}
	plans := planRuns(models, r.settings())
	if o.Emit.Kind != "" {
		return emitJobs(r, plans, o)
	}
	unlock, err := lockOut(o.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := prepareOut(o.Out, plans); err != nil {
		return nil, err
	}
	start := time.Now()
	runs, errs := runAll(ctx, r, plans, o)
	entries := make([]report.RunEntry, len(runs))
	for i, run := range runs {
		entries[i] = report.RunEntry{Dir: filepath.ToSlash(plans[i].Dir), Run: *run}
	}
	sum := report.NewSummary(o.Version, r.Path, entries)
	sum.Started, sum.Duration = start.UTC().Format(time.RFC3339), report.MillisOf(time.Since(start))
	if err := writeSummaries(o.Out, sum, plans); err != nil {
		return nil, err
	}
	return &Result{Out: o.Out, Summary: sum}, combineRunErrors(errs, len(plans), o.Severity)
}

// modelPaths lists the recipe's models then the command line's, as
// absolute paths, each once.
func (r *Recipe) modelPaths(args []string) ([]string, error) {
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
		if err := Readable(a); err != nil {
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
	used := map[string]bool{}
	for _, m := range models {
		base := runName(m)
		name := base
		for n := 2; used[strings.ToLower(name)] || reservedNames[strings.ToLower(name)]; n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		used[strings.ToLower(name)] = true
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

// lockName is the lock file that keeps two pare runs from writing into
// one --out at the same time.
const lockName = ".pare-run.lock"

// lockOut creates --out and takes its lock, failing at once when another
// pare run holds it. The returned func releases it.
func lockOut(out string) (func(), error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w: %w", report.ErrWrite, err)
	}
	f, err := os.OpenFile(filepath.Join(out, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run: %w: %w", report.ErrWrite, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, usageErrorf("run: another pare run is writing to %s; give each its own --out", out)
	}
	return func() { f.Close() }, nil
}

// MaxSweepPoints bounds the settings of a sweep (the product of its
// axes' value counts).
const MaxSweepPoints = 10_000

// gridSize returns the number of settings the sweep makes, as text, and
// whether it is within MaxSweepPoints; it multiplies without building
// the grid, so a grid of 10⁹ points costs nothing to refuse.
func (r *Recipe) gridSize() (string, bool) {
	n := 1
	for i, ax := range r.Sweep {
		n *= max(len(ax.Values), 1)
		if n > MaxSweepPoints {
			more := ""
			if i < len(r.Sweep)-1 {
				more = "more than "
			}
			return fmt.Sprintf("%s%d", more, n), false
		}
	}
	return fmt.Sprint(n), true
}

// reservedNames are the files pare run writes at the top of --out.
var reservedNames = map[string]bool{"report.json": true, "report.html": true, lockName: true}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// runName derives a run's directory name from a model path: the file
// name without its extension, with characters other than letters,
// digits and ._+- replaced and leading dots dropped, so that it is one
// plain path component (never "." or "..", never hidden) inside --out.
func runName(model string) string {
	name := strings.TrimSuffix(filepath.Base(model), filepath.Ext(model))
	name = strings.TrimLeft(nameUnsafe.ReplaceAllString(name, "_"), ".")
	if name == "" {
		name = "model"
	}
	return name
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
func runAll(ctx context.Context, r *Recipe, plans []runPlan, o Options) ([]*report.Run, []error) {
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
	var finished atomic.Int64
	progress.Report(ctx, "runs", 0, len(plans))
	for i, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			runs[i], errs[i] = executeRun(progress.Without(ctx), r, p, o, logf)
			progress.Report(ctx, "runs", int(finished.Add(1)), len(plans))
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
// the most severe by rank.
func combineRunErrors(errs []error, total int, rank func(error) int) error {
	var msgs []string
	var worst error
	if rank == nil {
		rank = func(error) int { return 0 }
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
