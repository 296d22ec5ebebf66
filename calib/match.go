package calib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// The one rule by which a data file (.npy or .npz) feeds a model's inputs,
// shared by prune, quant and check:
//
//   - a .npy file feeds a model with one input;
//   - an .npz feeds each input from the array of the same name; a file
//     with a single array feeds a single-input model whatever its name;
//     other arrays are ignored;
//   - every array has a batch axis, the input's rank and its static dims
//     after the batch axis, and a type convertible to the input's (floats
//     never feed integer inputs); it is converted when the types differ.
//
// Every mistake is an ErrData naming the file.

// Inputs describes a model's inputs as a data file sees them.
func Inputs(m *graph.Model) []ort.ValueInfo {
	out := make([]ort.ValueInfo, len(m.Graph.Inputs))
	// A pruned cache takes the original's sizes as well as its own
	// (ioslice): the session slices them, so the data's size on such an
	// axis is left free here.
	kept, _ := ioslice.FromModel(m.Proto)
	for i, in := range m.Graph.Inputs {
		tt := in.Info.GetType().GetTensorType()
		v := ort.ValueInfo{Name: in.Name, Tensor: tt != nil, DType: tensor.DType(tt.GetElemType())}
		if !v.DType.Valid() {
			v.DType = tensor.Invalid
		}
		for _, d := range tt.GetShape().GetDim() {
			if _, ok := d.GetValue().(*onnx.TensorShapeProto_Dimension_DimValue); !ok || d.GetDimValue() < 0 {
				v.Dims = append(v.Dims, -1)
			} else {
				v.Dims = append(v.Dims, d.GetDimValue())
			}
		}
		for _, a := range kept[in.Name] {
			if a.Axis < len(v.Dims) {
				v.Dims[a.Axis] = -1
			}
		}
		out[i] = v
	}
	return out
}

// Kind returns a data file's kind, ".npy" or ".npz", or an ErrData.
func Kind(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".npy", ".npz":
		return ext, nil
	}
	return "", fmt.Errorf("calib: %s: %w: want .npy or .npz", path, ErrData)
}

// Readable checks that path is a data file the commands can open (a
// regular .npy or .npz file that starts like one) and returns the error
// they give for one they cannot, so that a recipe refusing it up front
// words it the same way. Whether its arrays fit a model is for Open,
// NpyInputs and ReadNpz.
func Readable(path string) error {
	kind, err := Kind(path)
	if err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fileErr(path, errors.New("not a regular file"))
	}
	if kind == ".npy" {
		f, err := tensor.OpenNpy(path)
		if err != nil {
			return fileErr(path, err)
		}
		return f.Close()
	}
	if _, err := tensor.NpzKeys(path); err != nil {
		return fileErr(path, err)
	}
	return nil
}

// fileErr reports a data file that cannot be read as an ErrData.
func fileErr(path string, err error) error {
	return fmt.Errorf("calib: %s: %w: %w", path, ErrData, err)
}

// ReadNpz reads the arrays of an .npz that feed inputs, each converted
// to its input's element type. Only those arrays are inflated, at most
// maxRows rows each (all when ≤ 0) and maxBytes decoded bytes in all (0:
// tensor.DefaultNpzMaxBytes), so an archive that would inflate to
// gigabytes is refused from its headers.
func ReadNpz(path string, inputs []ort.ValueInfo, maxRows, maxBytes int64) (map[string]tensor.Dense, error) {
	keys, err := tensor.NpzKeys(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	wanted := make([]string, len(inputs))
	for i, in := range inputs {
		wanted[i] = in.Name
	}
	single := len(keys) == 1 && len(inputs) == 1
	if single {
		wanted = keys
	}
	arrays, err := tensor.ReadNpzLimited(path, tensor.NpzLimits{Keys: wanted, MaxRows: max(maxRows, 0), MaxBytes: maxBytes})
	if err != nil {
		return nil, fileErr(path, err)
	}
	if single {
		arrays = map[string]tensor.Dense{inputs[0].Name: arrays[keys[0]]}
	}
	feed := map[string]tensor.Dense{}
	var missing []string
	for _, in := range inputs {
		d, ok := arrays[in.Name]
		if !ok {
			missing = append(missing, in.Name)
			continue
		}
		what := fmt.Sprintf("%s[%q]", path, in.Name)
		if err := Fits(what, d.DType, d.Shape, in); err != nil {
			return nil, err
		}
		v, err := d.Convert(in.DType)
		if err != nil {
			return nil, fmt.Errorf("calib: %s: %w: %w", what, ErrData, err)
		}
		feed[in.Name] = v
	}
	if len(missing) > 0 {
		slices.Sort(keys)
		return nil, fmt.Errorf("calib: %s: %w: no array for input(s) %s (arrays: %s)",
			path, ErrData, strings.Join(missing, ", "), strings.Join(keys, ", "))
	}
	return feed, nil
}

// Fits checks data against a declared input before any run: a batch
// axis, the same rank, equal static dims after the batch axis, and a
// convertible type.
func Fits(what string, dt tensor.DType, shape []int64, in ort.ValueInfo) error {
	if len(shape) == 0 {
		return fmt.Errorf("calib: %s: %w: a scalar; inputs need a batch axis", what, ErrData)
	}
	if !dt.Valid() || in.DType == tensor.Invalid {
		return fmt.Errorf("calib: %s: %w: %v data cannot feed input %v", what, ErrData, dt, in)
	}
	if dt.IsFloat() && !in.DType.IsFloat() {
		return fmt.Errorf("calib: %s: %w: %v data, input %v wants integers", what, ErrData, dt, in)
	}
	if len(in.Dims) > 0 {
		ok := len(in.Dims) == len(shape)
		for i := 1; ok && i < len(shape); i++ {
			ok = in.Dims[i] < 0 || in.Dims[i] == shape[i]
		}
		if !ok {
			return fmt.Errorf("calib: %s: %w: shape %s, input %v", what, ErrData, tensor.FormatShape(shape), in)
		}
	}
	return nil
}

// Load reads a whole data file for m, each input's array converted to
// its type, keeping at most limit samples (all when limit ≤ 0).
func Load(path string, m *graph.Model, limit int) (map[string]tensor.Dense, error) {
	kind, err := Kind(path)
	if err != nil {
		return nil, err
	}
	inputs := Inputs(m)
	out := map[string]tensor.Dense{}
	if kind == ".npy" {
		f, err := tensor.OpenNpy(path)
		if err != nil {
			return nil, fileErr(path, err)
		}
		defer f.Close()
		feed, err := NpyInputs(path, f.DType(), f.Shape(), inputs)
		if err != nil {
			return nil, err
		}
		n := f.Rows()
		if limit > 0 {
			n = min(n, int64(limit))
		}
		v, err := f.ReadRows(0, n)
		if err != nil {
			return nil, fileErr(path, err)
		}
		if out, err = feed.Feed(v); err != nil {
			return nil, fmt.Errorf("calib: %s: %w: %w", path, ErrData, err)
		}
		return out, CheckTokenIDs(path, TokenVocab(m, inputs), out, 0)
	}
	if out, err = ReadNpz(path, inputs, int64(limit), 0); err != nil {
		return nil, err
	}
	rows := int64(-1)
	for _, in := range inputs {
		v := out[in.Name]
		if rows >= 0 && v.Rows() != rows {
			return nil, fmt.Errorf("calib: %s: %w: inputs have %d and %d samples", path, ErrData, rows, v.Rows())
		}
		rows = v.Rows()
		if limit > 0 && v.Rows() > int64(limit) {
			if out[in.Name], err = v.Slice(0, int64(limit)); err != nil {
				return nil, fmt.Errorf("calib: %s: %w", path, err)
			}
		}
	}
	return out, CheckTokenIDs(path, TokenVocab(m, inputs), out, 0)
}
