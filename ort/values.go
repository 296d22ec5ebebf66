package ort

import (
	"encoding/binary"
	"fmt"
	"reflect"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/tensor"
)

// toValue wraps d's memory in an onnxruntime value without copying (except
// float16 and bfloat16, which go through bytes). The caller destroys it
// and must not change d.Data until then.
func toValue(d tensor.Dense) (ort.Value, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	switch d.DType {
	case tensor.Float32:
		return newValue[float32](d)
	case tensor.Float64:
		return newValue[float64](d)
	case tensor.Int8:
		return newValue[int8](d)
	case tensor.Uint8:
		return newValue[uint8](d)
	case tensor.Int16:
		return newValue[int16](d)
	case tensor.Uint16:
		return newValue[uint16](d)
	case tensor.Int32:
		return newValue[int32](d)
	case tensor.Uint32:
		return newValue[uint32](d)
	case tensor.Int64:
		return newValue[int64](d)
	case tensor.Uint64:
		return newValue[uint64](d)
	case tensor.Bool:
		return newValue[bool](d)
	case tensor.Float16, tensor.BFloat16:
		if len(d.Shape) == 0 {
			return nil, fmt.Errorf("%v scalars are not supported by onnxruntime_go", d.DType)
		}
		bits := d.Data.([]uint16)
		if len(bits) == 0 {
			return nil, fmt.Errorf("empty %v tensors are not supported by onnxruntime_go", d.DType)
		}
		b := make([]byte, 0, 2*len(bits))
		for _, v := range bits {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return ort.NewCustomDataTensor(ort.NewShape(d.Shape...), b, ort.TensorElementDataType(d.DType))
	}
	return nil, fmt.Errorf("unsupported dtype %v", d.DType)
}

func newValue[T ort.TensorData](d tensor.Dense) (ort.Value, error) {
	data := d.Data.([]T)
	if len(d.Shape) == 0 {
		return ort.NewScalar(data[0])
	}
	return ort.NewTensor(ort.NewShape(d.Shape...), data)
}

// fromValue copies an onnxruntime value into a Dense. Tensor[T] data is
// already Go memory (onnxruntime_go copies outputs out of onnxruntime), so
// it is taken as is.
func fromValue(v ort.Value) (tensor.Dense, error) {
	shape := []int64(v.GetShape())
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[float64]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[int8]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[uint8]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[int16]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[uint16]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[int32]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[uint32]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[int64]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[uint64]:
		return tensor.New(shape, t.GetData())
	case *ort.Tensor[bool]:
		return tensor.New(shape, t.GetData())
	case *ort.Scalar[float32]:
		return tensor.New(nil, []float32{t.GetData()})
	case *ort.Scalar[float64]:
		return tensor.New(nil, []float64{t.GetData()})
	case *ort.Scalar[int8]:
		return tensor.New(nil, []int8{t.GetData()})
	case *ort.Scalar[uint8]:
		return tensor.New(nil, []uint8{t.GetData()})
	case *ort.Scalar[int16]:
		return tensor.New(nil, []int16{t.GetData()})
	case *ort.Scalar[uint16]:
		return tensor.New(nil, []uint16{t.GetData()})
	case *ort.Scalar[int32]:
		return tensor.New(nil, []int32{t.GetData()})
	case *ort.Scalar[uint32]:
		return tensor.New(nil, []uint32{t.GetData()})
	case *ort.Scalar[int64]:
		return tensor.New(nil, []int64{t.GetData()})
	case *ort.Scalar[uint64]:
		return tensor.New(nil, []uint64{t.GetData()})
	case *ort.Scalar[bool]:
		return tensor.New(nil, []bool{t.GetData()})
	case *ort.CustomDataTensor:
		dt := tensor.DType(t.DataType())
		if dt != tensor.Float16 && dt != tensor.BFloat16 {
			return tensor.Dense{}, fmt.Errorf("element type %v is not supported", ort.TensorElementDataType(dt))
		}
		b := t.GetData()
		n, err := tensor.NumElements(shape)
		if err != nil {
			return tensor.Dense{}, err
		}
		if int64(len(b)) != 2*n {
			return tensor.Dense{}, fmt.Errorf("%v output has %d bytes for shape %s", dt, len(b), tensor.FormatShape(shape))
		}
		bits := make([]uint16, n)
		for i := range bits {
			bits[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return tensor.NewOf(dt, shape, bits)
	}
	return tensor.Dense{}, fmt.Errorf("%v values are not supported", v.GetONNXType())
}

// destroyAll destroys and clears every value. onnxruntime_go can leave
// typed nil pointers in an output slice after a failed conversion, so
// those are skipped.
func destroyAll(vs []ort.Value) {
	for i, v := range vs {
		if v != nil && !reflect.ValueOf(v).IsNil() {
			v.Destroy()
		}
		vs[i] = nil
	}
}
