package calib

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// ErrData marks calibration data that does not fit the model.
var ErrData = errors.New("calibration data")

// Source streams calibration samples in batches: a .npy file is read
// batch by batch from disk; a .npz archive is read whole, then sliced.
// Files feed inputs by the rule of match.go.
type Source struct {
	Path string
	// Note says which inputs are filled beside a .npy's token ids
	// (NpyFeed.Note; "" when none).
	Note string
	feed NpyFeed                 // .npy: the input it feeds and the companions filled
	npy  *tensor.NpyFile         // .npy
	npz  map[string]tensor.Dense // .npz
	n    int
	// fixed is the model's static batch size, 0 when symbolic: samples
	// are then fed exactly fixed at a time.
	fixed int
	// vocab maps each integer input that indexes an embedding table
	// (token ids) to the table's rows: an id past them is the data's
	// fault, named here rather than by the runtime's Gather.
	vocab map[string]int64
}

// Open opens calibration data for m, keeping at most limit samples (all
// when limit ≤ 0).
func Open(path string, m *graph.Model, limit int) (*Source, error) {
	s := &Source{Path: path}
	kind, err := Kind(path)
	if err != nil {
		return nil, err
	}
	inputs := Inputs(m)
	s.vocab = TokenVocab(m, inputs)
	if kind == ".npy" {
		f, err := tensor.OpenNpy(path)
		if err != nil {
			return nil, fileErr(path, err)
		}
		feed, err := NpyInputs(path, f.DType(), f.Shape(), inputs)
		if err != nil {
			f.Close()
			return nil, err
		}
		s.npy, s.feed, s.Note, s.n = f, feed, feed.Note(), int(f.Rows())
	} else {
		// Only the samples used are inflated.
		if s.npz, err = ReadNpz(path, inputs, int64(limit), 0); err != nil {
			return nil, err
		}
		s.n = -1
		for _, in := range inputs {
			v := s.npz[in.Name]
			if s.n >= 0 && int(v.Rows()) != s.n {
				return nil, fmt.Errorf("calib: %s: %w: inputs have %d and %d samples", path, ErrData, s.n, v.Rows())
			}
			s.n = int(v.Rows())
		}
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

// Filled names the inputs the source fills itself beside a .npy's token
// ids (attention_mask, position_ids, token_type_ids: NpyFeed), whose
// values depend on the batch's size alone.
func (s *Source) Filled() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.feed.Filled))
	for i, in := range s.feed.Filled {
		names[i] = in.Name
	}
	return names
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
	var in map[string]tensor.Dense
	if s.npy != nil {
		d, err := s.npy.ReadRows(int64(i), int64(j-i))
		if err != nil {
			return nil, fmt.Errorf("calib: %w", err)
		}
		if in, err = s.feed.Feed(d); err != nil {
			return nil, fmt.Errorf("calib: %s: %w", s.Path, err)
		}
	} else {
		var err error
		if in, err = ort.SliceRows(s.npz, int64(i), int64(j)); err != nil {
			return nil, err
		}
	}
	return in, CheckTokenIDs(s.Path, s.vocab, in, i)
}

// TokenVocab maps each integer input of m that indexes an embedding
// table (token ids) to the table's rows.
func TokenVocab(m *graph.Model, inputs []ort.ValueInfo) map[string]int64 {
	vocab := map[string]int64{}
	for _, in := range inputs {
		if rows := m.Graph.EmbeddingRows(in.Name); rows > 0 && in.DType.IsInteger() {
			vocab[in.Name] = rows
		}
	}
	return vocab
}

// CheckTokenIDs refuses token ids of path outside their embedding
// table's rows (vocab; onnxruntime's Gather takes [-rows, rows)); first
// is the first sample of in.
func CheckTokenIDs(path string, vocab map[string]int64, in map[string]tensor.Dense, first int) error {
	bad, err := BadTokenID(vocab, in, first)
	if err != nil {
		return fmt.Errorf("calib: %s: %w", path, err)
	}
	if bad != "" {
		return fmt.Errorf("calib: %s: %w: %s", path, ErrData, bad)
	}
	return nil
}

// BadTokenID describes the first token id of in (inputs in name order)
// outside the rows of the embedding table its input indexes, or returns
// "" when every id is inside; first is the first sample of in.
func BadTokenID(vocab map[string]int64, in map[string]tensor.Dense, first int) (string, error) {
	for _, name := range slices.Sorted(maps.Keys(vocab)) {
		rows := vocab[name]
		d, ok := in[name]
		if !ok {
			continue
		}
		ids, err := d.Int64s()
		if err != nil {
			return "", err
		}
		per := max(len(ids)/max(int(d.Rows()), 1), 1)
		for k, id := range ids {
			if id >= rows || id < -rows {
				return fmt.Sprintf("token id %d (sample %d) for %s is past the %d rows of its embedding table", id, first+k/per, name, rows), nil
			}
		}
	}
	return "", nil
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
