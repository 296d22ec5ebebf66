package ort

import (
	"context"
	"fmt"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/tensor"
)

// Run feeds the named inputs (every model input, nothing else) and
// returns the requested outputs in the order asked; no names means all
// outputs in model order. Cancelling ctx terminates a run in progress.
//
// Input data is shared with onnxruntime for the duration of the call and
// must not be modified concurrently. Returned arrays never share memory
// with onnxruntime.
func (s *Session) Run(ctx context.Context, inputs map[string]tensor.Dense, outputNames []string) ([]tensor.Dense, error) {
	idx, err := s.outputIndexes(outputNames)
	if err != nil {
		return nil, err
	}
	in, err := s.inputValues(inputs)
	if err != nil {
		return nil, err
	}
	defer destroyAll(in)
	outs, err := s.run(ctx, in)
	if err != nil {
		return nil, err
	}
	res := make([]tensor.Dense, len(idx))
	for i, j := range idx {
		if res[i], err = readAdapted(s.adapters[j], outs); err == nil {
			err = res[i].Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("ort: %s: output %q: %w", s.name, s.outputs[j].Name, err)
		}
	}
	return res, nil
}

// outputIndexes maps requested names to output positions.
func (s *Session) outputIndexes(req []string) ([]int, error) {
	if len(req) == 0 {
		req = names(s.outputs)
	}
	idx := make([]int, len(req))
	for i, name := range req {
		j := slices.IndexFunc(s.outputs, func(v ValueInfo) bool { return v.Name == name })
		if j < 0 {
			return nil, fmt.Errorf("ort: %s: %w: no output %q (outputs: %s)", s.name, ErrInput, name, strings.Join(names(s.outputs), ", "))
		}
		if !s.outputs[j].Tensor || s.outputs[j].DType == tensor.Invalid {
			return nil, fmt.Errorf("ort: %s: output %q (%v) is not supported", s.name, name, s.outputs[j])
		}
		idx[i] = j
	}
	return idx, nil
}

// checkInputs validates inputs against the declared inputs.
func (s *Session) checkInputs(inputs map[string]tensor.Dense) error {
	for name := range inputs {
		if !slices.ContainsFunc(s.inputs, func(v ValueInfo) bool { return v.Name == name }) {
			return fmt.Errorf("ort: %s: %w: no input %q (inputs: %s)", s.name, ErrInput, name, strings.Join(names(s.inputs), ", "))
		}
	}
	for _, want := range s.inputs {
		d, ok := inputs[want.Name]
		if !ok {
			return fmt.Errorf("ort: %s: %w: missing input %q (%v)", s.name, ErrInput, want.Name, want)
		}
		if !want.Tensor || want.DType == tensor.Invalid {
			return fmt.Errorf("ort: %s: input %q (%v) is not supported", s.name, want.Name, want)
		}
		if err := d.Validate(); err != nil {
			return fmt.Errorf("ort: %s: input %q: %w", s.name, want.Name, err)
		}
		if d.DType != want.DType || !shapeFits(d.Shape, want.Dims) {
			return fmt.Errorf("ort: %s: %w: input %q is %v, the model wants %v", s.name, ErrInput, want.Name, d, want)
		}
	}
	return nil
}

// shapeFits reports whether a concrete shape matches declared dims (-1
// matches anything). No declared dims may also mean an unknown rank, which
// onnxruntime reports the same way as a scalar, so it matches anything.
func shapeFits(shape, dims []int64) bool {
	if len(dims) == 0 {
		return true
	}
	if len(shape) != len(dims) {
		return false
	}
	for i, d := range dims {
		if d >= 0 && shape[i] != d {
			return false
		}
	}
	return true
}

// inputValues validates inputs and wraps them in model order.
func (s *Session) inputValues(inputs map[string]tensor.Dense) ([]ort.Value, error) {
	inputs, err := s.kept.SliceAll(inputs)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w: %s", s.name, ErrInput, err)
	}
	if err := s.checkInputs(inputs); err != nil {
		return nil, err
	}
	vals := make([]ort.Value, len(s.inputs))
	for i, info := range s.inputs {
		v, err := toValue(inputs[info.Name])
		if err != nil {
			destroyAll(vals)
			return nil, fmt.Errorf("ort: %s: input %q: %w", s.name, info.Name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// run executes the session once and returns every session output
// converted to a Dense (indexes as in s.adapters).
func (s *Session) run(ctx context.Context, in []ort.Value) ([]tensor.Dense, error) {
	outs := make([]ort.Value, s.nOut)
	defer destroyAll(outs)
	if err := s.runRaw(ctx, in, outs); err != nil {
		return nil, err
	}
	res := make([]tensor.Dense, len(outs))
	for i, v := range outs {
		// Values Dense cannot hold (sequences, strings) stay zero;
		// outputIndexes never lets them be asked for.
		if v != nil {
			res[i], _ = fromValue(v)
		}
	}
	return res, nil
}

// runRaw runs with outs pre-filled where allocated; nil entries are
// allocated by onnxruntime. On error, outs may hold values to destroy.
func (s *Session) runRaw(ctx context.Context, in, outs []ort.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("ort: %s: session is closed", s.name)
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("ort: %s: %w: %v", s.name, ErrRun, err)
	}
	defer ro.Destroy()
	stop := context.AfterFunc(ctx, func() { ro.Terminate() })
	defer stop()
	if err := s.sess.RunWithOptions(in, outs, ro); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ort: %s: %w", s.name, ctx.Err())
		}
		return fmt.Errorf("ort: %s: %w: %s", s.name, ErrRun, oneLine(err.Error()))
	}
	return nil
}
