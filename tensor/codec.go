package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// appendDecoded decodes little-endian elements of dt from b (whose length
// is a multiple of dt.Size()) and appends them to dst, a slice of dt's Go
// type (or nil).
func appendDecoded(dst any, dt DType, b []byte) (any, error) {
	le := binary.LittleEndian
	n := len(b) / dt.Size()
	switch dt {
	case Float32:
		s, _ := dst.([]float32)
		for i := range n {
			s = append(s, math.Float32frombits(le.Uint32(b[4*i:])))
		}
		return s, nil
	case Float64:
		s, _ := dst.([]float64)
		for i := range n {
			s = append(s, math.Float64frombits(le.Uint64(b[8*i:])))
		}
		return s, nil
	case Int8:
		s, _ := dst.([]int8)
		for i := range n {
			s = append(s, int8(b[i]))
		}
		return s, nil
	case Uint8:
		s, _ := dst.([]uint8)
		return append(s, b...), nil
	case Bool:
		s, _ := dst.([]bool)
		for i := range n {
			s = append(s, b[i] != 0)
		}
		return s, nil
	case Int16:
		s, _ := dst.([]int16)
		for i := range n {
			s = append(s, int16(le.Uint16(b[2*i:])))
		}
		return s, nil
	case Uint16, Float16, BFloat16:
		s, _ := dst.([]uint16)
		for i := range n {
			s = append(s, le.Uint16(b[2*i:]))
		}
		return s, nil
	case Int32:
		s, _ := dst.([]int32)
		for i := range n {
			s = append(s, int32(le.Uint32(b[4*i:])))
		}
		return s, nil
	case Uint32:
		s, _ := dst.([]uint32)
		for i := range n {
			s = append(s, le.Uint32(b[4*i:]))
		}
		return s, nil
	case Int64:
		s, _ := dst.([]int64)
		for i := range n {
			s = append(s, int64(le.Uint64(b[8*i:])))
		}
		return s, nil
	case Uint64:
		s, _ := dst.([]uint64)
		for i := range n {
			s = append(s, le.Uint64(b[8*i:]))
		}
		return s, nil
	}
	return nil, fmt.Errorf("tensor: unsupported dtype %v", dt)
}

// appendEncoded appends the little-endian bytes of data[from:to] to b.
func appendEncoded(b []byte, data any, from, to int) ([]byte, error) {
	le := binary.LittleEndian
	switch s := data.(type) {
	case []float32:
		for _, v := range s[from:to] {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case []float64:
		for _, v := range s[from:to] {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	case []int8:
		for _, v := range s[from:to] {
			b = append(b, byte(v))
		}
	case []uint8:
		b = append(b, s[from:to]...)
	case []bool:
		for _, v := range s[from:to] {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []int16:
		for _, v := range s[from:to] {
			b = le.AppendUint16(b, uint16(v))
		}
	case []uint16:
		for _, v := range s[from:to] {
			b = le.AppendUint16(b, v)
		}
	case []int32:
		for _, v := range s[from:to] {
			b = le.AppendUint32(b, uint32(v))
		}
	case []uint32:
		for _, v := range s[from:to] {
			b = le.AppendUint32(b, v)
		}
	case []int64:
		for _, v := range s[from:to] {
			b = le.AppendUint64(b, uint64(v))
		}
	case []uint64:
		for _, v := range s[from:to] {
			b = le.AppendUint64(b, v)
		}
	default:
		return nil, fmt.Errorf("tensor: cannot encode %T", data)
	}
	return b, nil
}
