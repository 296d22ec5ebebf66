package tensor

import "fmt"

// Convert returns d with elements converted to dt: between any numeric
// types, except that floats are not turned into integers or bools (that
// would silently truncate). Converting to the same type returns d itself.
func (d Dense) Convert(dt DType) (Dense, error) {
	if d.DType == dt {
		return d, nil
	}
	if d.DType.IsFloat() && !dt.IsFloat() {
		return Dense{}, fmt.Errorf("tensor: will not convert %v to %v (it would truncate)", d.DType, dt)
	}
	if !dt.Valid() {
		return Dense{}, fmt.Errorf("tensor: unsupported dtype %v", dt)
	}
	f, err := d.Float64s()
	if err != nil {
		return Dense{}, err
	}
	out, err := Zeros(dt, d.Shape)
	if err != nil {
		return Dense{}, err
	}
	if ints, ok := d.Data.([]int64); ok && (dt == Uint64 || dt == Int64) {
		// Keep 64-bit integers exact rather than going through float64.
		if u, ok := out.Data.([]uint64); ok {
			for i, v := range ints {
				u[i] = uint64(v)
			}
			return out, nil
		}
	}
	switch o := out.Data.(type) {
	case []float32:
		for i, v := range f {
			o[i] = float32(v)
		}
	case []float64:
		copy(o, f)
	case []int8:
		for i, v := range f {
			o[i] = int8(v)
		}
	case []uint8:
		for i, v := range f {
			o[i] = uint8(v)
		}
	case []int16:
		for i, v := range f {
			o[i] = int16(v)
		}
	case []uint16:
		enc := func(v float64) uint16 { return uint16(v) }
		switch dt {
		case Float16:
			enc = func(v float64) uint16 { return Float32ToFloat16(float32(v)) }
		case BFloat16:
			enc = func(v float64) uint16 { return Float32ToBFloat16(float32(v)) }
		}
		for i, v := range f {
			o[i] = enc(v)
		}
	case []int32:
		for i, v := range f {
			o[i] = int32(v)
		}
	case []uint32:
		for i, v := range f {
			o[i] = uint32(v)
		}
	case []int64:
		if u, ok := d.Data.([]uint64); ok {
			for i, v := range u {
				o[i] = int64(v)
			}
			break
		}
		for i, v := range f {
			o[i] = int64(v)
		}
	case []uint64:
		for i, v := range f {
			o[i] = uint64(v)
		}
	case []bool:
		for i, v := range f {
			o[i] = v != 0
		}
	}
	return out, nil
}
