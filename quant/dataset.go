package quant

import (
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// Dataset holds calibration samples: one array per graph input, all with
// the same number of rows (samples) along axis 0, or samples made batch by
// batch (SyntheticDataset), so that their memory does not grow with their
// number.
type Dataset struct {
	Inputs map[string]tensor.Dense
	// gen, when set, makes the samples instead of Inputs.
	gen *synthetic
}

// Len returns the number of samples.
func (d Dataset) Len() int {
	if d.gen != nil {
		return d.gen.n
	}
	for _, v := range d.Inputs {
		return int(v.Rows())
	}
	return 0
}

// first returns the dataset's first n samples.
func (d Dataset) first(n int) (Dataset, error) {
	if d.gen != nil {
		return Dataset{gen: d.gen.first(n)}, nil
	}
	in, err := d.Batch(0, n)
	return Dataset{Inputs: in}, err
}

// Batch returns samples [i, j) of every input.
func (d Dataset) Batch(i, j int) (map[string]tensor.Dense, error) {
	if d.gen != nil {
		return d.gen.batch(i, j)
	}
	out := make(map[string]tensor.Dense, len(d.Inputs))
	for name, v := range d.Inputs {
		s, err := v.Slice(int64(i), int64(j))
		if err != nil {
			return nil, fmt.Errorf("quant: calibration input %q: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// LoadDataset reads calibration data for m (calib.Load: one array per
// input, by the data-file rule every command shares). At most limit
// samples are kept (all when limit ≤ 0).
func LoadDataset(path string, m *graph.Model, limit int) (Dataset, error) {
	arrays, err := calib.Load(path, m, limit)
	if err != nil {
		return Dataset{}, err
	}
	d := Dataset{Inputs: arrays}
	return d, d.check(m)
}

// check verifies that every input has data of the declared element type
// and the same number of samples.
func (d Dataset) check(m *graph.Model) error {
	if d.gen != nil {
		return nil // made from the declared inputs
	}
	rows := int64(-1)
	for _, in := range m.Graph.Inputs {
		v, ok := d.Inputs[in.Name]
		if !ok {
			return fmt.Errorf("quant: calibration: %w: no data for input %q", ErrInvalid, in.Name)
		}
		if err := v.Validate(); err != nil {
			return fmt.Errorf("quant: calibration input %q: %w", in.Name, err)
		}
		if len(v.Shape) == 0 {
			return fmt.Errorf("quant: calibration input %q: %w: a scalar has no samples", in.Name, ErrInvalid)
		}
		if rows >= 0 && v.Rows() != rows {
			return fmt.Errorf("quant: calibration: %w: inputs have %d and %d samples", ErrInvalid, rows, v.Rows())
		}
		rows = v.Rows()
		if want := elemType(in.Info); want != 0 && int32(v.DType) != int32(want) {
			return fmt.Errorf("quant: calibration input %q: %w: %v data for a %v input", in.Name, ErrInvalid, v.DType, want)
		}
	}
	if rows == 0 {
		return fmt.Errorf("quant: calibration: %w: no samples", ErrInvalid)
	}
	return nil
}

func elemType(vi *onnx.ValueInfoProto) graph.DataType {
	return graph.DataType(vi.GetType().GetTensorType().GetElemType())
}

// declaredDims returns the input's dims, -1 for symbolic or missing ones.
func declaredDims(vi *onnx.ValueInfoProto) []int64 {
	var dims []int64
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if v, ok := d.GetValue().(*onnx.TensorShapeProto_Dimension_DimValue); ok && v.DimValue > 0 {
			dims = append(dims, v.DimValue)
		} else {
			dims = append(dims, -1)
		}
	}
	return dims
}
