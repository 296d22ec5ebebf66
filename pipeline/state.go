package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/report"
)

// runState is one run in progress: the recipe at one setting, applied to
// one model, writing into dir.
type runState struct {
	r       *Recipe
	s       setting
	input   string // the model the run starts from
	current string // the newest model: input, then each step's output
	dir     string
	ortLib  string
	rep     *report.Run
	logf    func(format string, args ...any)
	// checkGates are the gate results of the last check step.
	checkGates []report.Gate
}

// stepNames returns the names of step i's files: its model and result
// use the step's name, suffixed with its position when the recipe has
// more than one step of that kind.
func (st *runState) stepNames(i int) (base, plan string) {
	kind, n := st.r.Steps[i].Kind, 0
	for _, s := range st.r.Steps {
		if s.Kind == kind {
			n++
		}
	}
	if n == 1 {
		return kind, "plan.json"
	}
	pos := strconv.Itoa(i + 1)
	return kind + "-" + pos, "plan-" + pos + ".json"
}

// runStep runs step i with its outputs in a staging directory, and moves
// them into the run directory only when the step succeeded, so that a
// failed or interrupted step leaves none of its files.
func (st *runState) runStep(ctx context.Context, i int) (files []string, output string, err error) {
	stage := filepath.Join(st.dir, fmt.Sprintf(".step-%d.partial", i+1))
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(stage)
	base, plan := st.stepNames(i)
	env := &Env{Input: st.input, Current: st.current, Stage: stage, Base: base, Plan: plan,
		OrtLib: st.ortLib, Logf: st.logf, Report: st.rep}
	work, err := st.r.prepare(ctx, st.s, i, env)
	if err != nil {
		return nil, "", err
	}
	out, err := work(ctx)
	if err != nil {
		return nil, "", err
	}
	if i == st.r.lastStep("check") {
		st.checkGates = out.Gates
	}
	for _, f := range out.Files {
		if err := os.Rename(filepath.Join(stage, f), filepath.Join(st.dir, f)); err != nil {
			return nil, "", fmt.Errorf("run: %w", err)
		}
	}
	if out.Model != "" {
		st.current = filepath.Join(st.dir, out.Model)
		if m, err := graph.MeasureFile(st.current); err == nil {
			st.rep.After.Params, st.rep.After.MACs, st.rep.After.SizeBytes = m.Params, m.MACs, &m.SizeBytes
		}
	}
	return out.Files, out.Model, nil
}
