package tensor

import (
	"fmt"
	"reflect"
	"slices"
)

// Slice returns rows [start, end) along axis 0. The result shares Data
// with d; Clone it before writing to either.
func (d Dense) Slice(start, end int64) (Dense, error) {
	if err := d.Validate(); err != nil {
		return Dense{}, err
	}
	if len(d.Shape) == 0 {
		return Dense{}, fmt.Errorf("%w: cannot slice a scalar", ErrShape)
	}
	if start < 0 || end < start || end > d.Shape[0] {
		return Dense{}, fmt.Errorf("%w: rows [%d, %d) out of range for %s", ErrShape, start, end, FormatShape(d.Shape))
	}
	row, err := NumElements(d.Shape[1:])
	if err != nil {
		return Dense{}, err
	}
	v := reflect.ValueOf(d.Data).Slice(int(start*row), int(end*row))
	shape := slices.Clone(d.Shape)
	shape[0] = end - start
	return Dense{DType: d.DType, Shape: shape, Data: v.Interface()}, nil
}

// Concat joins arrays along axis 0. All parts must have the same dtype and
// the same dims after the first. The result never shares memory with the
// parts.
func Concat(parts ...Dense) (Dense, error) {
	if len(parts) == 0 {
		return Dense{}, fmt.Errorf("tensor: concat of nothing")
	}
	first := parts[0]
	if len(first.Shape) == 0 {
		return Dense{}, fmt.Errorf("%w: cannot concat scalars", ErrShape)
	}
	rows := int64(0)
	for i, p := range parts {
		if err := p.Validate(); err != nil {
			return Dense{}, fmt.Errorf("tensor: concat part %d: %w", i, err)
		}
		if p.DType != first.DType {
			return Dense{}, fmt.Errorf("tensor: concat part %d is %v, part 0 is %v", i, p.DType, first.DType)
		}
		if len(p.Shape) != len(first.Shape) || !slices.Equal(p.Shape[1:], first.Shape[1:]) {
			return Dense{}, fmt.Errorf("%w: concat part %d is %s, part 0 is %s", ErrShape, i, FormatShape(p.Shape), FormatShape(first.Shape))
		}
		rows += p.Shape[0]
		if rows < 0 {
			return Dense{}, fmt.Errorf("%w: concat overflows", ErrShape)
		}
	}
	shape := slices.Clone(first.Shape)
	shape[0] = rows
	out, err := Zeros(first.DType, shape)
	if err != nil {
		return Dense{}, err
	}
	dst := reflect.ValueOf(out.Data)
	at := 0
	for _, p := range parts {
		at += reflect.Copy(dst.Slice(at, dst.Len()), reflect.ValueOf(p.Data))
	}
	return out, nil
}
