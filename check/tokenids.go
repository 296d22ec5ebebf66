package check

import (
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/tensor"
)

// WithTokenIDsChecked returns src refusing, batch by batch, token ids
// past the rows of the embedding table their input indexes (vocab:
// input name → rows, calib.TokenVocab), with an ErrData naming the
// file, the id, its sample and the input. Without the check such an id
// fails inside onnxruntime's Gather, as a runtime error naming neither
// the file nor the sample. An empty vocab returns src as it is.
func WithTokenIDsChecked(src Source, path string, vocab map[string]int64) Source {
	if len(vocab) == 0 {
		return src
	}
	return idsChecked{src, path, vocab}
}

type idsChecked struct {
	Source
	path  string
	vocab map[string]int64
}

func (s idsChecked) Batch(start, end int64) (map[string]tensor.Dense, error) {
	in, err := s.Source.Batch(start, end)
	if err != nil {
		return nil, err
	}
	bad, err := calib.BadTokenID(s.vocab, in, int(start))
	if err != nil {
		return nil, fmt.Errorf("check: %s: %w", s.path, err)
	}
	if bad != "" {
		return nil, fmt.Errorf("check: %s: %w: %s", s.path, ErrData, bad)
	}
	return in, nil
}
