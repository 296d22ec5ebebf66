package tensor

import "fmt"

// DType is an element type. The values are ONNX TensorProto.DataType
// numbers (and onnxruntime's ONNXTensorElementDataType, which uses the same
// numbering).
type DType int32

// Supported element types.
const (
	Invalid  DType = 0
	Float32  DType = 1
	Uint8    DType = 2
	Int8     DType = 3
	Uint16   DType = 4
	Int16    DType = 5
	Int32    DType = 6
	Int64    DType = 7
	Bool     DType = 9
	Float16  DType = 10 // raw IEEE 754 half bits in a []uint16
	Float64  DType = 11
	Uint32   DType = 12
	Uint64   DType = 13
	BFloat16 DType = 16 // raw bfloat16 bits in a []uint16
)

var dtypeNames = map[DType]string{
	Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", Bool: "bool",
	Float16: "float16", Float64: "float64", Uint32: "uint32",
	Uint64: "uint64", BFloat16: "bfloat16",
}

// String returns the NumPy-style name of the type ("float32").
func (t DType) String() string {
	if s, ok := dtypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(t))
}

// Valid reports whether t is one of the supported element types.
func (t DType) Valid() bool {
	_, ok := dtypeNames[t]
	return ok
}

// Size returns the size of one element in bytes, or 0 for an invalid type.
func (t DType) Size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
}

// IsFloat reports whether t is a floating-point type.
func (t DType) IsFloat() bool {
	switch t {
	case Float32, Float64, Float16, BFloat16:
		return true
	}
	return false
}

// IsInteger reports whether t is a signed or unsigned integer type.
func (t DType) IsInteger() bool {
	switch t {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64:
		return true
	}
	return false
}

// DTypeOf returns the element type a Go slice holds. A []uint16 is Uint16;
// float16 and bfloat16 data must be labelled explicitly.
func DTypeOf(data any) DType {
	switch data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int8:
		return Int8
	case []uint8:
		return Uint8
	case []int16:
		return Int16
	case []uint16:
		return Uint16
	case []int32:
		return Int32
	case []uint32:
		return Uint32
	case []int64:
		return Int64
	case []uint64:
		return Uint64
	case []bool:
		return Bool
	}
	return Invalid
}

// goTypeMatches reports whether data is the Go slice type that holds t.
func goTypeMatches(t DType, data any) bool {
	got := DTypeOf(data)
	if t == Float16 || t == BFloat16 {
		return got == Uint16
	}
	return got == t && t != Invalid
}

// makeSlice allocates a zeroed slice of n elements for t.
func makeSlice(t DType, n int) (any, error) {
	switch t {
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case Int8:
		return make([]int8, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Uint16, Float16, BFloat16:
		return make([]uint16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	}
	return nil, fmt.Errorf("tensor: unsupported dtype %v", t)
}
