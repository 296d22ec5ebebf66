package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/report"
)

// runPlan is one model at one setting, before it runs.
type runPlan struct {
	Name    string // the model's name, unique within the run
	Input   string // absolute path of the model
	Setting setting
	// Dir is the run's directory under --out: <model> or
	// <model>/<setting>.
	Dir string
}

// executeRun takes one model through the recipe's steps and writes its
// report. It returns the report and, when the run did not pass, an error
// naming the model and the failed step or gates.
func executeRun(ctx context.Context, r *Recipe, p runPlan, o Options, logf func(string, ...any)) (*report.Run, error) {
	out, ortLib := o.Out, o.OrtLib
	start := time.Now()
	rep := report.NewRun(o.Version)
	rep.Recipe, rep.Model, rep.Input, rep.Started = r.Path, p.Name, p.Input, start.UTC().Format(time.RFC3339)
	for _, sv := range p.Setting {
		rep.Setting = append(rep.Setting, report.Param{Key: sv.Key, Value: sv.Value.Text})
	}
	for i, s := range r.Steps {
		step := report.Step{Name: s.Kind, Status: report.StepSkipped}
		for _, o := range p.Setting.stepOpts(r, i) {
			step.Options = append(step.Options, report.Param{Key: o.Name, Value: o.Value.Text})
		}
		rep.Steps = append(rep.Steps, step)
	}
	dir := filepath.Join(out, p.Dir)
	st := &runState{r: r, s: p.Setting, input: p.Input, current: p.Input, dir: dir, ortLib: ortLib, rep: rep, logf: logf}
	prepErr := prepareRunDir(dir)
	runErr := prepErr
	if runErr == nil {
		runErr = st.steps(ctx, p, start)
	}
	rep.Duration = report.MillisOf(time.Since(start))
	switch {
	case slices.ContainsFunc(rep.Steps, func(s report.Step) bool { return s.Status == report.StepInterrupted }):
		rep.Status, runErr = report.RunInterrupted, fmt.Errorf("%s: %w", p.label(), ErrInterrupted)
	case runErr != nil:
		rep.Status = report.RunError
	default:
		rep.Gates = append(append(rep.Gates, st.checkGates...), evalRunGates(r, rep)...)
		rep.Status, rep.Pass = report.RunPassed, true
		var failed []string
		for _, g := range rep.Gates {
			if !g.Pass {
				failed = append(failed, fmt.Sprintf("gate %s failed: %s", g.Gate, g.Detail))
			}
		}
		if len(failed) > 0 {
			rep.Status, rep.Pass = report.RunGateFailed, false
			runErr = fmt.Errorf("%s: %s: %w", p.label(), strings.Join(failed, "; "), check.ErrFailed)
		}
	}
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if prepErr != nil {
		// The directory is not pare's: write nothing into it.
		return rep, runErr
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		err = report.WriteRun(dir, rep)
		if err != nil && runErr == nil {
			runErr = err
		}
	}
	return rep, runErr
}

// steps runs the steps in order, checking for cancellation between
// them. A step that fails marks the rest skipped.
func (st *runState) steps(ctx context.Context, p runPlan, start time.Time) error {
	m, err := graph.MeasureFile(p.Input)
	if err != nil {
		return fmt.Errorf("%s: run: %w", p.label(), err)
	}
	st.rep.Before = report.Metrics{Params: m.Params, MACs: m.MACs, SizeBytes: &m.SizeBytes}
	st.rep.After = st.rep.Before
	for i := range st.r.Steps {
		step := &st.rep.Steps[i]
		if ctx.Err() != nil {
			st.interrupt(i)
			return nil
		}
		st.logf("%s: %s…", p.label(), step.Name)
		t := time.Now()
		files, output, err := st.runStep(ctx, i)
		step.Duration = report.MillisOf(time.Since(t))
		if err != nil {
			if ctx.Err() != nil {
				st.interrupt(i)
				return nil
			}
			step.Status, step.Error = report.StepFailed, err.Error()
			for j := i + 1; j < len(st.rep.Steps); j++ {
				st.rep.Steps[j].Status = report.StepSkipped
			}
			st.logf("%s: %s failed: %v", p.label(), step.Name, err)
			return fmt.Errorf("%s: %s step (%s): %w", p.label(), step.Name, st.r.Steps[i].Where, err)
		}
		step.Status, step.Files, step.Output = report.StepDone, files, output
		st.logf("%s: %s done in %s", p.label(), step.Name, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// interrupt marks step i and those after it interrupted.
func (st *runState) interrupt(i int) {
	for j := i; j < len(st.rep.Steps); j++ {
		st.rep.Steps[j].Status = report.StepInterrupted
	}
}

// label names a run in messages: the model, and the setting in a sweep.
func (p runPlan) label() string {
	if len(p.Setting) == 0 {
		return p.Name
	}
	return p.Name + " [" + p.Setting.String() + "]"
}

// prepareRunDir empties a run directory left by an earlier pare run (one
// with a report.json) so that no stale step output survives, and refuses
// a directory pare did not write. It removes only what pare run writes:
// reports, step outputs (.onnx, .data, .json), staging folders, and
// setting folders that are themselves run directories. A directory
// holding anything else is refused before anything is removed.
func prepareRunDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if err := ownedRunDir(dir); err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".partial") {
			if err := prepareRunDir(p); err != nil {
				return err
			}
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("run: %w", err)
			}
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	}
	return nil
}

// ownedRunDir checks, without changing anything, that every entry of
// dir (recursively) is one pare run writes.
func ownedRunDir(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, "report.json")); err != nil {
		return usageErrorf("run: %s is not empty and holds no report.json; refusing to overwrite it", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && strings.HasPrefix(name, ".step-") && strings.HasSuffix(name, ".partial"):
		case e.IsDir():
			if err := ownedRunDir(filepath.Join(dir, name)); err != nil {
				return err
			}
		case !e.Type().IsRegular():
			return usageErrorf("run: %s holds %s, which pare did not write; refusing to clear it", dir, name)
		case name == "report.json" || name == "report.html":
		case strings.HasSuffix(name, ".onnx") || strings.HasSuffix(name, ".onnx.data") || strings.HasSuffix(name, ".json"):
		default:
			return usageErrorf("run: %s holds %s, which pare did not write; refusing to clear it", dir, name)
		}
	}
	return nil
}
