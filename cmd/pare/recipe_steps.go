package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/report"
)

// runState is one run in progress: the recipe at one setting, applied to
// one model, writing into dir.
type runState struct {
	r       *recipe
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
	switch st.r.Steps[i].Kind {
	case "prune":
		files, output, err = st.prune(ctx, i, stage, base, plan)
	case "quant":
		files, output, err = st.quant(ctx, i, stage, base)
	case "check":
		files, err = st.check(ctx, i, stage, base)
	case "bench":
		files, err = st.bench(ctx, i, stage, base)
	}
	if err != nil {
		return nil, "", err
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(stage, f), filepath.Join(st.dir, f)); err != nil {
			return nil, "", fmt.Errorf("run: %w", err)
		}
	}
	if output != "" {
		st.current = filepath.Join(st.dir, output)
		if m, err := benchStatic(st.current); err == nil {
			st.rep.After.Params, st.rep.After.MACs, st.rep.After.SizeBytes = m.Params, m.MACs, &m.SizeBytes
		}
	}
	return files, output, nil
}

func (st *runState) prune(ctx context.Context, i int, stage, base, plan string) ([]string, string, error) {
	o, err := st.r.pruneOpts(ctx, st.s, i, st.current, filepath.Join(stage, base+".onnx"))
	if err != nil {
		return nil, "", err
	}
	o.OrtLib = st.ortLib
	files := []string{base + ".onnx", base + ".json"}
	if o.PlanIn == "" && !o.Unstructured && o.NM == "" {
		o.PlanOut = filepath.Join(stage, plan)
		files = append(files, plan)
	}
	res, err := runPrune(ctx, o)
	if err != nil {
		return nil, "", err
	}
	st.rep.Layers = st.rep.Layers[:0]
	for _, g := range res.Groups {
		st.rep.Layers = append(st.rep.Layers, report.Layer{Name: g.Name, Size: int64(g.Size), Kept: int64(g.Kept),
			Sparsity: 1 - float64(g.Kept)/float64(max(g.Size, 1)), Frozen: g.Frozen})
	}
	for _, l := range res.Layers {
		st.rep.Layers = append(st.rep.Layers, report.Layer{Name: l.Node, Size: l.Size, Kept: l.Size - l.Zeros, Sparsity: l.Sparsity})
	}
	return files, base + ".onnx", writeJSON(filepath.Join(stage, base+".json"), res)
}

func (st *runState) quant(ctx context.Context, i int, stage, base string) ([]string, string, error) {
	o, err := st.r.quantOpts(ctx, st.s, i, st.current, filepath.Join(stage, base+".onnx"))
	if err != nil {
		return nil, "", err
	}
	o.OrtLib, o.Logf = st.ortLib, st.logf
	res, err := runQuant(ctx, o)
	if err != nil {
		return nil, "", err
	}
	return []string{base + ".onnx", base + ".json"}, base + ".onnx", writeJSON(filepath.Join(stage, base+".json"), res)
}

// check compares the current model with the run's input. A failed
// threshold is a verdict, not a step failure: the step is done and the
// gates say what failed.
func (st *runState) check(ctx context.Context, i int, stage, base string) ([]string, error) {
	o, err := st.r.checkOpts(ctx, st.s, i, st.input, st.current)
	if err != nil {
		return nil, err
	}
	o.OrtLib = st.ortLib
	rep, err := runCheck(ctx, o)
	if err != nil && (rep == nil || !errors.Is(err, check.ErrFailed)) {
		return nil, err
	}
	b, a := &st.rep.Before, &st.rep.After
	if acc := rep.Accuracy; acc != nil {
		b.Accuracy, a.Accuracy = finite(float64(acc.Ref)), finite(float64(acc.Cand))
	}
	for _, out := range rep.Outputs {
		if out.Top1 != nil || len(rep.Outputs) == 1 {
			one := 1.0
			b.Agreement, b.Cosine = &one, &one
			if out.Top1 != nil {
				a.Agreement = finite(float64(*out.Top1))
			}
			a.Cosine = finite(float64(out.Cosine))
			break
		}
	}
	if i == st.r.lastStep("check") {
		st.checkGates = checkGates(rep.Gates)
	}
	return []string{base + ".json"}, writeJSON(filepath.Join(stage, base+".json"), rep)
}

// bench times the input and the current model side by side.
func (st *runState) bench(ctx context.Context, i int, stage, base string) ([]string, error) {
	models := []string{st.input}
	if st.current != st.input {
		models = append(models, st.current)
	}
	o, err := st.r.benchOpts(ctx, st.s, i, models...)
	if err != nil {
		return nil, err
	}
	o.OrtLib = st.ortLib
	rep, err := runBench(ctx, o)
	if err != nil {
		return nil, err
	}
	median := func(m benchModel) *int64 {
		if len(m.Timings) == 0 || m.Timings[0].Skipped != "" {
			return nil
		}
		return &m.Timings[0].MedianNs
	}
	st.rep.Before.LatencyNs = median(rep.Models[0])
	st.rep.After.LatencyNs = median(rep.Models[len(rep.Models)-1])
	return []string{base + ".json"}, writeJSON(filepath.Join(stage, base+".json"), rep)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("run: %s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
