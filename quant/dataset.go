package quant

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// Dataset holds calibration samples: one array per graph input, all with
// the same number of rows (samples) along axis 0.
type Dataset struct {
	Inputs map[string]tensor.Dense
}

// Len returns the number of samples.
func (d Dataset) Len() int {
	for _, v := range d.Inputs {
		return int(v.Rows())
	}
	return 0
}

// Batch returns samples [i, j) of every input.
func (d Dataset) Batch(i, j int) (map[string]tensor.Dense, error) {
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

// SyntheticLen replaces symbolic dims other than the sample axis in
// synthetic calibration data (sequence lengths of token inputs).
const SyntheticLen = 16

// SyntheticDataset draws n samples per input from the declared shapes with
// a seeded generator: standard normal floats; integers uniform in
// [0, rows) when the input indexes a constant table through Gather (token
// ids), else in [0, 2); inputs named like an attention mask are all
// ones. Axis 0 is the sample axis; other symbolic dims (sequence
// lengths) get SyntheticLen.
func SyntheticDataset(m *graph.Model, n int, seed uint64) (Dataset, error) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	d := Dataset{Inputs: map[string]tensor.Dense{}}
	for _, in := range m.Graph.Inputs {
		dims := declaredDims(in.Info)
		if len(dims) == 0 {
			return d, fmt.Errorf("quant: synthetic data: %w: input %q has no declared shape", ErrUnsupported, in.Name)
		}
		shape := append([]int64{int64(n)}, dims[1:]...)
		count := int64(n)
		for i, v := range shape[1:] {
			if v < 0 {
				shape[i+1], v = SyntheticLen, SyntheticLen
			}
			count *= v
		}
		mask := strings.Contains(strings.ToLower(in.Name), "mask")
		var data any
		switch elemType(in.Info) {
		case onnx.TensorProto_FLOAT:
			v := make([]float32, count)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			data = v
		case onnx.TensorProto_INT64, onnx.TensorProto_INT32:
			hi := int64(2)
			for _, c := range m.Graph.Consumers(in.Name) {
				if c.Op() == "Gather" && c.Input(1) == in.Name {
					if t, ok := m.Graph.Constant(c.Input(0)); ok && len(t.Dims) > 0 {
						hi = t.Dims[0]
					}
				}
			}
			v := make([]int64, count)
			for i := range v {
				if v[i] = rng.Int64N(hi); mask {
					v[i] = 1
				}
			}
			if elemType(in.Info) == onnx.TensorProto_INT32 {
				w := make([]int32, count)
				for i := range v {
					w[i] = int32(v[i])
				}
				data = w
			} else {
				data = v
			}
		default:
			return d, fmt.Errorf("quant: synthetic data: %w: input %q of type %v", ErrUnsupported, in.Name, elemType(in.Info))
		}
		t, err := tensor.New(shape, data)
		if err != nil {
			return d, fmt.Errorf("quant: synthetic data: %w", err)
		}
		d.Inputs[in.Name] = t
	}
	return d, nil
}
