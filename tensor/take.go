package tensor

import (
	"fmt"
	"reflect"
)

// Take returns the positions keep of axis, in the order given: the
// positions of a model input or output that a pruned model kept.
func (d Dense) Take(axis int, keep []int64) (Dense, error) {
	if err := d.Validate(); err != nil {
		return Dense{}, err
	}
	if axis < 0 || axis >= len(d.Shape) {
		return Dense{}, fmt.Errorf("%w: axis %d of %v", ErrShape, axis, d.Shape)
	}
	size := d.Shape[axis]
	for _, k := range keep {
		if k < 0 || k >= size {
			return Dense{}, fmt.Errorf("%w: position %d of axis %d of %v", ErrShape, k, axis, d.Shape)
		}
	}
	outer, inner := int64(1), int64(1)
	for i, s := range d.Shape {
		switch {
		case i < axis:
			outer *= s
		case i > axis:
			inner *= s
		}
	}
	shape := append([]int64{}, d.Shape...)
	shape[axis] = int64(len(keep))
	n, err := NumElements(shape)
	if err != nil {
		return Dense{}, err
	}
	data, err := makeSlice(d.DType, int(n))
	if err != nil {
		return Dense{}, err
	}
	src, dst := reflect.ValueOf(d.Data), reflect.ValueOf(data)
	at := 0
	for o := range outer {
		for _, k := range keep {
			from := int((o*size + k) * inner)
			reflect.Copy(dst.Slice(at, at+int(inner)), src.Slice(from, from+int(inner)))
			at += int(inner)
		}
	}
	return Dense{DType: d.DType, Shape: shape, Data: data}, nil
}
