package calib

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

func inputsOf(t *testing.T, name string) []ort.ValueInfo {
	t.Helper()
	m, err := graph.Load("../fixtures/models/" + name + ".onnx")
	if err != nil {
		t.Fatal(err)
	}
	return Inputs(m)
}

// A .npy of token ids feeds an export's input_ids and fills its
// attention_mask and position_ids (or token_type_ids) as a tokenizer
// does for unpadded text; a one-input model takes the file as it is.
func TestNpyFeedFillsCompanionInputs(t *testing.T) {
	ids := tensor.Dense{DType: tensor.Int64, Shape: []int64{2, 3}, Data: []int64{5, 6, 7, 8, 9, 10}}
	for _, tc := range []struct {
		model  string
		filled map[string][]int64
	}{
		{"llama_masked_nano_op17", map[string][]int64{"attention_mask": {1, 1, 1, 1, 1, 1}, "position_ids": {0, 1, 2, 0, 1, 2}}},
		{"bert_masked_nano_op17", map[string][]int64{"attention_mask": {1, 1, 1, 1, 1, 1}, "token_type_ids": {0, 0, 0, 0, 0, 0}}},
		{"llama_char_op17", nil},
	} {
		f, err := NpyInputs("ids.npy", tensor.Int64, []int64{100, 3}, inputsOf(t, tc.model))
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		in, err := f.Feed(ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := in[f.Input.Name].Data; !slices.Equal(got.([]int64), ids.Data.([]int64)) {
			t.Errorf("%s: %s = %v, want the file's ids", tc.model, f.Input.Name, got)
		}
		if len(in) != 1+len(tc.filled) {
			t.Errorf("%s: %d inputs fed, want %d", tc.model, len(in), 1+len(tc.filled))
		}
		for name, want := range tc.filled {
			d, ok := in[name]
			if !ok || !slices.Equal(d.Shape, ids.Shape) || !slices.Equal(d.Data.([]int64), want) {
				t.Errorf("%s: %s = %v, want %v shaped %v", tc.model, name, d, want, ids.Shape)
			}
			if !strings.Contains(f.Note(), name) {
				t.Errorf("%s: note %q does not name %s", tc.model, f.Note(), name)
			}
		}
		if tc.filled == nil && f.Note() != "" {
			t.Errorf("%s: note %q for a one-input model", tc.model, f.Note())
		}
	}
}

// What the fill cannot stand for is refused as bad data naming the
// inputs: float rows for an export of token ids, an input beside the
// ids that is no companion.
func TestNpyFeedRefusesWhatItCannotFill(t *testing.T) {
	llama := inputsOf(t, "llama_masked_nano_op17")
	if _, err := NpyInputs("x.npy", tensor.Float32, []int64{4, 3}, llama); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "attention_mask") {
		t.Errorf("float rows for token ids: %v", err)
	}
	other := slices.Clone(llama)
	other[1].Name = "pixel_values"
	if _, err := NpyInputs("ids.npy", tensor.Int64, []int64{4, 3}, other); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "pixel_values") {
		t.Errorf("an input that is no companion: %v", err)
	}
}
