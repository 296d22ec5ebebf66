package calib

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// companions are the inputs a Hugging Face export takes beside its token
// ids, with the values a tokenizer gives unpadded text: every position
// attended, positions counted from 0, one segment.
var companions = map[string]struct {
	value func(pos int) int64
	says  string
}{
	"attention_mask": {func(int) int64 { return 1 }, "attention_mask all ones"},
	"position_ids":   {func(pos int) int64 { return int64(pos) }, "position_ids 0..seq-1"},
	"token_type_ids": {func(int) int64 { return 0 }, "token_type_ids all zeros"},
}

// NpyFeed is what a .npy file feeds: one input, and, when the model is
// an export taking an attention mask, position ids or token-type ids
// beside its token ids, those companions filled for every batch.
type NpyFeed struct {
	Input  ort.ValueInfo
	Filled []ort.ValueInfo
}

// NpyInputs returns what a .npy file with that element type and shape
// feeds: a one-input model's input; or the token-id input of a model
// whose other inputs are all companions ([batch, seq] integers named
// attention_mask, position_ids or token_type_ids), which are filled.
// Any other model needs an .npz with one array per input.
func NpyInputs(path string, dt tensor.DType, shape []int64, inputs []ort.ValueInfo) (NpyFeed, error) {
	if len(inputs) == 1 {
		return NpyFeed{Input: inputs[0]}, Fits(path, dt, shape, inputs[0])
	}
	var f NpyFeed
	ok := len(shape) == 2 && !dt.IsFloat()
	for _, in := range inputs {
		_, known := companions[in.Name]
		switch {
		case !ok:
		case known && !in.DType.IsFloat() && len(in.Dims) == 2:
			f.Filled = append(f.Filled, in)
		case f.Input.Name == "" && !known:
			f.Input = in
		default:
			ok = false
		}
	}
	if !ok || f.Input.Name == "" {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.Name
		}
		return NpyFeed{}, fmt.Errorf("calib: %s: %w: a .npy file feeds a model with one input, or token ids [batch, seq] beside %s; this model has %d inputs (%s): use an .npz with one array per input",
			path, ErrData, strings.Join(slices.Sorted(maps.Keys(companions)), ", "), len(inputs), strings.Join(names, ", "))
	}
	return f, Fits(path, dt, shape, f.Input)
}

// Feed converts rows d of the .npy to the input's type and adds the
// filled companions, shaped as d.
func (f NpyFeed) Feed(d tensor.Dense) (map[string]tensor.Dense, error) {
	d, err := d.Convert(f.Input.DType)
	if err != nil {
		return nil, err
	}
	out := map[string]tensor.Dense{f.Input.Name: d}
	if len(f.Filled) == 0 {
		return out, nil
	}
	rows, seq := int(d.Shape[0]), int(d.Shape[1])
	for _, in := range f.Filled {
		v := make([]int64, rows*seq)
		for i := range v {
			v[i] = companions[in.Name].value(i % seq)
		}
		c, err := tensor.Dense{DType: tensor.Int64, Shape: slices.Clone(d.Shape), Data: v}.Convert(in.DType)
		if err != nil {
			return nil, err
		}
		out[in.Name] = c
	}
	return out, nil
}

// Note says which inputs are filled beside the file's ("" when none).
func (f NpyFeed) Note() string {
	if len(f.Filled) == 0 {
		return ""
	}
	says := make([]string, len(f.Filled))
	for i, in := range f.Filled {
		says[i] = companions[in.Name].says
	}
	return fmt.Sprintf("the .npy holds %s only: %s, as for unpadded text (give an .npz for other values)", f.Input.Name, strings.Join(says, ", "))
}
