package graph

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pare-dev/pare/onnx"
)

// DataTypeOf returns t's element type.
func DataTypeOf(t *onnx.TensorProto) DataType { return DataType(t.GetDataType()) }

// Shape returns the tensor's dims.
func Shape(t *onnx.TensorProto) []int64 { return t.Dims }

// IsExternal reports whether t's data lives in an external file.
func IsExternal(t *onnx.TensorProto) bool {
	return t.GetDataLocation() == onnx.TensorProto_EXTERNAL
}

// RawBytes returns t's elements as little-endian bytes in raw_data layout
// (sub-byte types packed two or four to a byte), whichever field holds
// them. It checks that the data matches the dims.
func RawBytes(t *onnx.TensorProto) ([]byte, error) {
	dt := DataTypeOf(t)
	n, err := NumElements(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	if IsExternal(t) {
		return nil, fmt.Errorf("tensor %q: external data not loaded", t.GetName())
	}
	if dt == onnx.TensorProto_STRING {
		return nil, fmt.Errorf("tensor %q: STRING tensors have no raw bytes", t.GetName())
	}
	size, err := ByteSize(dt, n)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	fields := 0
	for _, set := range []bool{t.RawData != nil, len(t.FloatData) > 0, len(t.Int32Data) > 0,
		len(t.Int64Data) > 0, len(t.DoubleData) > 0, len(t.Uint64Data) > 0, len(t.StringData) > 0} {
		if set {
			fields++
		}
	}
	if fields > 1 {
		return nil, fmt.Errorf("tensor %q: %w: several data fields set", t.GetName(), ErrInvalidModel)
	}
	if t.RawData != nil || n == 0 {
		if int64(len(t.RawData)) != size {
			return nil, fmt.Errorf("tensor %q: %w: raw_data has %d bytes, dims %v of %v need %d",
				t.GetName(), ErrInvalidModel, len(t.RawData), t.Dims, dt, size)
		}
		return t.RawData, nil
	}
	out := make([]byte, 0, size)
	count := func(have int64, want int64) error {
		if have != want {
			return fmt.Errorf("tensor %q: %w: %d stored values, dims %v need %d",
				t.GetName(), ErrInvalidModel, have, t.Dims, want)
		}
		return nil
	}
	switch dt {
	case onnx.TensorProto_FLOAT, onnx.TensorProto_COMPLEX64:
		want := n
		if dt == onnx.TensorProto_COMPLEX64 {
			want = 2 * n
		}
		if err := count(int64(len(t.FloatData)), want); err != nil {
			return nil, err
		}
		for _, f := range t.FloatData {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	case onnx.TensorProto_DOUBLE, onnx.TensorProto_COMPLEX128:
		want := n
		if dt == onnx.TensorProto_COMPLEX128 {
			want = 2 * n
		}
		if err := count(int64(len(t.DoubleData)), want); err != nil {
			return nil, err
		}
		for _, f := range t.DoubleData {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
		}
	case onnx.TensorProto_INT64:
		if err := count(int64(len(t.Int64Data)), n); err != nil {
			return nil, err
		}
		for _, v := range t.Int64Data {
			out = binary.LittleEndian.AppendUint64(out, uint64(v))
		}
	case onnx.TensorProto_UINT32, onnx.TensorProto_UINT64:
		if err := count(int64(len(t.Uint64Data)), n); err != nil {
			return nil, err
		}
		for _, v := range t.Uint64Data {
			if dt == onnx.TensorProto_UINT32 {
				out = binary.LittleEndian.AppendUint32(out, uint32(v))
			} else {
				out = binary.LittleEndian.AppendUint64(out, v)
			}
		}
	case onnx.TensorProto_INT4, onnx.TensorProto_UINT4, onnx.TensorProto_FLOAT4E2M1:
		// int32_data holds the packed bytes, two elements each.
		if err := count(int64(len(t.Int32Data)), size); err != nil {
			return nil, err
		}
		for _, v := range t.Int32Data {
			out = append(out, byte(v))
		}
	case onnx.TensorProto_INT2, onnx.TensorProto_UINT2:
		if err := count(int64(len(t.Int32Data)), size); err != nil {
			return nil, err
		}
		for _, v := range t.Int32Data {
			out = append(out, byte(v))
		}
	default:
		// Every other fixed-size type is stored one element per int32.
		if err := count(int64(len(t.Int32Data)), n); err != nil {
			return nil, err
		}
		width := Bits(dt) / 8
		for _, v := range t.Int32Data {
			switch width {
			case 1:
				out = append(out, byte(v))
			case 2:
				out = binary.LittleEndian.AppendUint16(out, uint16(v))
			case 4:
				out = binary.LittleEndian.AppendUint32(out, uint32(v))
			}
		}
	}
	return out, nil
}

// Float32s decodes a numeric tensor into float32 values.
func Float32s(t *onnx.TensorProto) ([]float32, error) {
	if DataTypeOf(t) == onnx.TensorProto_FLOAT && t.RawData == nil && len(t.FloatData) > 0 {
		if _, err := RawBytes(t); err != nil { // validates the count
			return nil, err
		}
		return append([]float32(nil), t.FloatData...), nil
	}
	raw, err := RawBytes(t)
	if err != nil {
		return nil, err
	}
	n, _ := NumElements(t.Dims)
	return DecodeFloat32(DataTypeOf(t), raw, n)
}

// Int64s decodes an integer (or boolean) tensor into int64 values.
func Int64s(t *onnx.TensorProto) ([]int64, error) {
	raw, err := RawBytes(t)
	if err != nil {
		return nil, err
	}
	n, _ := NumElements(t.Dims)
	return DecodeInt64(DataTypeOf(t), raw, n)
}

// SetFloat32s replaces t's data with vals (converted to t's float type)
// in raw_data, and sets dims.
func SetFloat32s(t *onnx.TensorProto, dims []int64, vals []float32) error {
	raw, err := EncodeFloat32(DataTypeOf(t), vals)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	setRaw(t, dims, raw)
	return nil
}

// SetInt64s replaces t's data with vals (converted to t's integer type).
func SetInt64s(t *onnx.TensorProto, dims []int64, vals []int64) error {
	raw, err := EncodeInt64(DataTypeOf(t), vals)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	setRaw(t, dims, raw)
	return nil
}

// SetRaw replaces t's data with raw bytes in raw_data layout.
func SetRaw(t *onnx.TensorProto, dims []int64, raw []byte) { setRaw(t, dims, raw) }

func setRaw(t *onnx.TensorProto, dims []int64, raw []byte) {
	// Replaced mapped bytes are not read again through t.
	releaseMapped(t.RawData)
	t.Dims = append([]int64(nil), dims...)
	t.RawData = raw
	t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = nil, nil, nil, nil, nil
	t.ExternalData, t.DataLocation = nil, nil
	if t.RawData == nil {
		t.RawData = []byte{}
	}
}

// NewTensor returns a tensor called name holding raw bytes.
func NewTensor(name string, dt DataType, dims []int64, raw []byte) *onnx.TensorProto {
	t := &onnx.TensorProto{Name: &name, DataType: proto32(int32(dt))}
	setRaw(t, dims, raw)
	return t
}

// FloatTensor returns a FLOAT tensor called name.
func FloatTensor(name string, dims []int64, vals []float32) *onnx.TensorProto {
	raw, _ := EncodeFloat32(onnx.TensorProto_FLOAT, vals)
	return NewTensor(name, onnx.TensorProto_FLOAT, dims, raw)
}

// Int64Tensor returns an INT64 tensor called name.
func Int64Tensor(name string, dims []int64, vals []int64) *onnx.TensorProto {
	raw, _ := EncodeInt64(onnx.TensorProto_INT64, vals)
	return NewTensor(name, onnx.TensorProto_INT64, dims, raw)
}

func proto32(v int32) *int32 { return &v }

// ConstantNodeTensor returns the value of a Constant node as a tensor.
func ConstantNodeTensor(np *onnx.NodeProto) (*onnx.TensorProto, error) {
	name := ""
	if len(np.Output) > 0 {
		name = np.Output[0]
	}
	for _, a := range np.Attribute {
		switch a.GetName() {
		case "value":
			if a.T == nil {
				return nil, fmt.Errorf("constant %q: %w: empty value", name, ErrInvalidModel)
			}
			return a.T, nil
		case "value_float":
			return FloatTensor(name, nil, []float32{a.GetF()}), nil
		case "value_floats":
			return FloatTensor(name, []int64{int64(len(a.Floats))}, a.Floats), nil
		case "value_int":
			return Int64Tensor(name, nil, []int64{a.GetI()}), nil
		case "value_ints":
			return Int64Tensor(name, []int64{int64(len(a.Ints))}, a.Ints), nil
		}
	}
	return nil, fmt.Errorf("constant %q: %w: no numeric dense value", name, ErrUnsupported)
}

// ConstantFloat64s returns the values of the constant name (see
// Graph.Constant) widened to float64, for the statistics that need
// float64 accumulation.
func (g *Graph) ConstantFloat64s(name string) ([]float64, error) {
	t, ok := g.Constant(name)
	if !ok {
		return nil, fmt.Errorf("graph: %q is not a constant", name)
	}
	v, err := Float32s(t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, nil
}

// ReleaseBytes is Release for part of a tensor's bytes: the whole pages
// of b leave the process's memory when b lies in a memory-mapped file,
// so that a long tensor read front to back need not stay resident
// behind the reader.
func ReleaseBytes(b []byte) { releaseMapped(b) }

// Release tells pare that t's bytes will not be read again soon: when
// they alias a memory-mapped external data file, their pages leave the
// process's memory (a later read pages them in again from the file), so
// that reading a model tensor by tensor keeps one tensor resident, not
// the whole file. Tensors on the heap are left alone.
func Release(t *onnx.TensorProto) {
	if t != nil {
		releaseMapped(t.RawData)
	}
}

// Keep returns a function that puts t's data back as it is now, sharing
// its bytes, not copying them: a weight replaced for a while (sequential
// GPTQ runs the model with its quantized layers dequantized) gets its
// original back, still aliasing its mapped data file when it did.
func Keep(t *onnx.TensorProto) func() {
	dims := append([]int64(nil), t.Dims...)
	raw, f32, i32, i64, f64, u64, str := t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data, t.StringData
	ext, loc := t.ExternalData, t.DataLocation
	return func() {
		t.Dims = dims
		t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data, t.StringData = raw, f32, i32, i64, f64, u64, str
		t.ExternalData, t.DataLocation = ext, loc
	}
}
