package calib

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// ErrData marks calibration data that does not fit the model.
var ErrData = errors.New("calibration data")

// Source streams calibration samples in batches: a .npy file (for a model
// with one input) is read batch by batch from disk; a .npz archive (one
// array per input name) is read whole, then sliced.
type Source struct {
	Path  string
	input string                  // .npy: the model input it feeds
	npy   *tensor.NpyFile         // .npy
	npz   map[string]tensor.Dense // .npz
	n     int
	// fixed is the model's static batch size, 0 when symbolic: samples
	// are then fed exactly fixed at a time.
	fixed int
}

// Open opens calibration data for m, keeping at most limit samples (all
// when limit ≤ 0).
func Open(path string, m *graph.Model, limit int) (*Source, error) {
	s := &Source{Path: path}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		if len(m.Graph.Inputs) != 1 {
			return nil, fmt.Errorf("calib: %s: %w: a .npy file feeds a model with one input; this one has %d (use .npz)", path, ErrData, len(m.Graph.Inputs))
		}
		f, err := tensor.OpenNpy(path)
		if err != nil {
			return nil, fmt.Errorf("calib: %w", err)
		}
		s.npy, s.input, s.n = f, m.Graph.Inputs[0].Name, int(f.Rows())
	case ".npz":
		// Only the samples used are inflated (see tensor.NpzLimits).
		names := make([]string, len(m.Graph.Inputs))
		for i, in := range m.Graph.Inputs {
			names[i] = in.Name
		}
		arrays, err := tensor.ReadNpzLimited(path, tensor.NpzLimits{Keys: names, MaxRows: int64(max(limit, 0))})
		if err != nil {
			return nil, fmt.Errorf("calib: %w", err)
		}
		s.npz = map[string]tensor.Dense{}
		s.n = -1
		for _, in := range m.Graph.Inputs {
			v, ok := arrays[in.Name]
			if !ok || v.Rank() == 0 {
				return nil, fmt.Errorf("calib: %s: %w: no batched array for input %q", path, ErrData, in.Name)
			}
			if s.n >= 0 && int(v.Rows()) != s.n {
				return nil, fmt.Errorf("calib: %s: %w: inputs have %d and %d samples", path, ErrData, s.n, v.Rows())
			}
			s.npz[in.Name], s.n = v, int(v.Rows())
		}
	default:
		return nil, fmt.Errorf("calib: %s: %w: want .npy or .npz", path, ErrData)
	}
	if limit > 0 {
		s.n = min(s.n, limit)
	}
	if s.n <= 0 {
		return nil, fmt.Errorf("calib: %s: %w: no samples", path, ErrData)
	}
	// A model with a fixed batch runs whole batches only; the remainder
	// that does not fill one is left out.
	if s.fixed = int(graph.FixedBatch(m)); s.fixed > 0 {
		if s.n < s.fixed {
			return nil, fmt.Errorf("calib: %s: %w: %d samples, fewer than the model's fixed batch of %d", path, ErrData, s.n, s.fixed)
		}
		s.n -= s.n % s.fixed
	}
	return s, nil
}

// Len is the number of samples used.
func (s *Source) Len() int { return s.n }

// Close releases the file.
func (s *Source) Close() error {
	if s.npy != nil {
		return s.npy.Close()
	}
	return nil
}

// Batch returns samples [i, j).
func (s *Source) Batch(i, j int) (map[string]tensor.Dense, error) {
	if s.npy != nil {
		d, err := s.npy.ReadRows(int64(i), int64(j-i))
		if err != nil {
			return nil, fmt.Errorf("calib: %w", err)
		}
		return map[string]tensor.Dense{s.input: d}, nil
	}
	return ort.SliceRows(s.npz, int64(i), int64(j))
}

// Fit returns the batch size to run when batch is wanted: the model's
// fixed batch when it has one, else batch (at least 1).
func (s *Source) Fit(batch int) int {
	if s.fixed > 0 {
		return s.fixed
	}
	return max(batch, 1)
}

// Each calls fn with consecutive batches of up to batch samples (exactly
// the model's fixed batch when it has one).
func (s *Source) Each(ctx context.Context, batch int, fn func(in map[string]tensor.Dense) error) error {
	batch = s.Fit(batch)
	for i := 0; i < s.n; i += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := s.Batch(i, min(i+batch, s.n))
		if err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}
