package ort

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/tensor"
)

// RunBatched runs a dataset in batches of up to batch rows: every input is
// split along axis 0 (all must have the same number of rows), each batch
// is run, and each output's batches are concatenated along axis 0. Outputs
// must therefore have the batch as their first axis.
func (s *Session) RunBatched(ctx context.Context, inputs map[string]tensor.Dense, outputNames []string, batch int64) ([]tensor.Dense, error) {
	rows, err := commonRows(inputs)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", s.name, err)
	}
	if batch <= 0 {
		return nil, fmt.Errorf("ort: %s: batch size %d must be positive", s.name, batch)
	}
	var parts [][]tensor.Dense
	for at := int64(0); at < rows; at += batch {
		b, err := SliceRows(inputs, at, min(rows, at+batch))
		if err != nil {
			return nil, fmt.Errorf("ort: %s: %w", s.name, err)
		}
		out, err := s.Run(ctx, b, outputNames)
		if err != nil {
			return nil, fmt.Errorf("rows %d-%d: %w", at, min(rows, at+batch)-1, err)
		}
		parts = append(parts, out)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("ort: %s: no rows to run", s.name)
	}
	res := make([]tensor.Dense, len(parts[0]))
	for j := range res {
		col := make([]tensor.Dense, len(parts))
		for i := range parts {
			col[i] = parts[i][j]
		}
		if res[j], err = tensor.Concat(col...); err != nil {
			return nil, fmt.Errorf("ort: %s: output %d: %w", s.name, j, err)
		}
	}
	return res, nil
}

// SliceRows returns rows [start, end) of every input; the slices share
// memory with the inputs.
func SliceRows(inputs map[string]tensor.Dense, start, end int64) (map[string]tensor.Dense, error) {
	out := make(map[string]tensor.Dense, len(inputs))
	for name, d := range inputs {
		s, err := d.Slice(start, end)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// commonRows returns the size of axis 0 shared by all inputs.
func commonRows(inputs map[string]tensor.Dense) (int64, error) {
	rows := int64(-1)
	var first string
	for name, d := range inputs {
		if d.Rank() == 0 {
			return 0, fmt.Errorf("%w: input %q is a scalar and cannot be split into batches", ErrInput, name)
		}
		if rows >= 0 && d.Shape[0] != rows {
			return 0, fmt.Errorf("%w: input %q has %d rows, input %q has %d", ErrInput, name, d.Shape[0], first, rows)
		}
		if rows < 0 {
			rows, first = d.Shape[0], name
		}
	}
	if rows < 0 {
		return 0, fmt.Errorf("%w: no inputs", ErrInput)
	}
	return rows, nil
}
