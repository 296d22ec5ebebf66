package tensor

import (
	"fmt"
	"slices"
)

// Float32s returns the elements converted to float32 (float16 and bfloat16
// decoded, bools as 0 or 1). A Float32 array returns its own Data, not a
// copy.
func (d Dense) Float32s() ([]float32, error) {
	if v, ok := d.Data.([]float32); ok && d.DType == Float32 {
		return v, nil
	}
	f64, err := d.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(f64))
	for i, v := range f64 {
		out[i] = float32(v)
	}
	return out, nil
}

// Float64sInto is Float64s writing float32 and float64 elements into
// dst's storage where it is large enough, for callers that convert one
// batch after another; other types get a new slice.
func (d Dense) Float64sInto(dst []float64) ([]float64, error) {
	if !goTypeMatches(d.DType, d.Data) {
		return nil, fmt.Errorf("tensor: dtype %v cannot hold data of type %T", d.DType, d.Data)
	}
	switch v := d.Data.(type) {
	case []float32:
		return convertInto(dst, v), nil
	case []float64:
		return append(dst[:0], v...), nil
	}
	return d.Float64s()
}

// Float64s returns the elements converted to float64 (float16 and bfloat16
// decoded, bools as 0 or 1). It always returns a new slice.
func (d Dense) Float64s() ([]float64, error) {
	if !goTypeMatches(d.DType, d.Data) {
		return nil, fmt.Errorf("tensor: dtype %v cannot hold data of type %T", d.DType, d.Data)
	}
	switch v := d.Data.(type) {
	case []float32:
		return convertSlice(v), nil
	case []float64:
		return append([]float64(nil), v...), nil
	case []int8:
		return convertSlice(v), nil
	case []uint8:
		return convertSlice(v), nil
	case []int16:
		return convertSlice(v), nil
	case []uint16:
		switch d.DType {
		case Float16:
			return decodeHalf(v, Float16ToFloat32), nil
		case BFloat16:
			return decodeHalf(v, BFloat16ToFloat32), nil
		}
		return convertSlice(v), nil
	case []int32:
		return convertSlice(v), nil
	case []uint32:
		return convertSlice(v), nil
	case []int64:
		return convertSlice(v), nil
	case []uint64:
		return convertSlice(v), nil
	case []bool:
		out := make([]float64, len(v))
		for i, b := range v {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor: cannot convert %T to float", d.Data)
}

// Int64s returns integer or bool elements converted to int64. Float arrays
// are refused: truncating them silently would hide a wrong file.
func (d Dense) Int64s() ([]int64, error) {
	if d.DType.IsFloat() {
		return nil, fmt.Errorf("tensor: want integers, have %v", d.DType)
	}
	if v, ok := d.Data.([]int64); ok {
		return append([]int64(nil), v...), nil
	}
	if v, ok := d.Data.([]uint64); ok {
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return out, nil
	}
	f, err := d.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(f))
	for i, x := range f {
		out[i] = int64(x)
	}
	return out, nil
}

type real interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

func convertSlice[T real](v []T) []float64 {
	return convertInto(nil, v)
}

// convertInto converts v into dst's storage where it is large enough.
func convertInto[T real](dst []float64, v []T) []float64 {
	out := slices.Grow(dst[:0], len(v))[:len(v)]
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func decodeHalf(v []uint16, f func(uint16) float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(f(x))
	}
	return out
}
