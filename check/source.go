package check

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// Source provides model inputs by row range, so that a dataset can be
// run in batches without being held in memory at once.
type Source interface {
	// Rows is the number of samples (the size of axis 0).
	Rows() int64
	// Batch returns rows [start, end) of every input, converted to the
	// element types the models declare.
	Batch(start, end int64) (map[string]tensor.Dense, error)
	// Describe says where the data comes from, for reports.
	Describe() string
	Close() error
}

// npySource streams one .npy file into a single-input model, or into
// the token ids of an export whose companion inputs are filled
// (calib.NpyFeed).
type npySource struct {
	f    *tensor.NpyFile
	feed calib.NpyFeed
}

// FromNpy feeds the rows of a .npy file to a model's only input, reading
// each batch from disk when it is needed. The data is converted to the
// input's element type when they differ (float64 data for a float32
// input, say), but floats are never turned into integers.
func FromNpy(path string, inputs []ort.ValueInfo) (Source, error) {
	f, err := tensor.OpenNpy(path)
	if err != nil {
		return nil, dataErr(fmt.Errorf("calib: %s: %w: %w", path, calib.ErrData, err))
	}
	feed, err := calib.NpyInputs(path, f.DType(), f.Shape(), inputs)
	if err != nil {
		f.Close()
		return nil, dataErr(err)
	}
	return &npySource{f: f, feed: feed}, nil
}

// FromFile is FromNpy for a .npy path, FromNpz for any other.
func FromFile(path string, inputs []ort.ValueInfo) (Source, error) {
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		return FromNpy(path, inputs)
	}
	return FromNpz(path, inputs)
}

// dataErr is a data file error of the rule package calib applies to every
// command; it is also an ErrData of this package.
func dataErr(err error) error { return &fileError{err} }

type fileError struct{ err error }

func (e *fileError) Error() string   { return e.err.Error() }
func (e *fileError) Unwrap() []error { return []error{e.err, ErrData} }

func (s *npySource) Rows() int64 { return s.f.Rows() }
func (s *npySource) Describe() string {
	if n := s.feed.Note(); n != "" {
		return s.f.Path() + "; " + n
	}
	return s.f.Path()
}
func (s *npySource) Close() error { return s.f.Close() }

func (s *npySource) Batch(start, end int64) (map[string]tensor.Dense, error) {
	d, err := s.f.ReadRows(start, end-start)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	in, err := s.feed.Feed(d)
	if err != nil {
		return nil, fmt.Errorf("check: %s: %w", s.f.Path(), err)
	}
	return in, nil
}

// memSource serves arrays held in memory.
type memSource struct {
	arrays map[string]tensor.Dense
	rows   int64
	desc   string
}

// FromNpz feeds the arrays of an .npz file to the inputs of the same
// names (a file with a single array may feed a single-input model
// whatever its name). Other arrays are ignored. Data is converted to the
// declared element types as in FromNpy.
func FromNpz(path string, inputs []ort.ValueInfo) (Source, error) {
	// Only the arrays that feed an input are decompressed, and all of
	// them together must fit in MaxDataBytes.
	feed, err := calib.ReadNpz(path, inputs, 0, MaxDataBytes)
	if err != nil {
		return nil, dataErr(err)
	}
	return FromArrays(feed, path)
}

// FromArrays serves in-memory arrays, one per input name; all must have
// the same number of rows.
func FromArrays(arrays map[string]tensor.Dense, desc string) (Source, error) {
	rows := int64(-1)
	for _, name := range sortedKeys(arrays) {
		d := arrays[name]
		if d.Rank() == 0 {
			return nil, fmt.Errorf("check: %w: input %q is a scalar; inputs need a batch axis", ErrData, name)
		}
		if rows >= 0 && d.Shape[0] != rows {
			return nil, fmt.Errorf("check: %w: input %q has %d rows, others have %d", ErrData, name, d.Shape[0], rows)
		}
		rows = d.Shape[0]
	}
	if rows < 0 {
		return nil, fmt.Errorf("check: %w: no inputs", ErrData)
	}
	return &memSource{arrays: arrays, rows: rows, desc: desc}, nil
}

func (s *memSource) Rows() int64      { return s.rows }
func (s *memSource) Describe() string { return s.desc }
func (s *memSource) Close() error     { return nil }

func (s *memSource) Batch(start, end int64) (map[string]tensor.Dense, error) {
	b, err := ort.SliceRows(s.arrays, start, end)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return b, nil
}

func infoNames(in []ort.ValueInfo) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = v.Name
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
