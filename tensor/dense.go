package tensor

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Dense is an n-dimensional array in C (row-major) order.
//
// Data holds exactly NumElements(Shape) elements in the Go slice type of
// DType: []float32, []float64, []int8, []uint8, []int16, []uint16, []int32,
// []uint32, []int64, []uint64 or []bool; Float16 and BFloat16 keep their raw
// bits in a []uint16. A rank-0 (scalar) array has an empty Shape and one
// element.
type Dense struct {
	DType DType
	Shape []int64
	Data  any
}

// ErrShape reports a shape that is negative, overflows, or does not match
// the data it describes.
var ErrShape = errors.New("tensor: bad shape")

// maxElements bounds element counts so that byte sizes of 8-byte types fit
// in an int64 and in an int on 64-bit platforms.
const maxElements = math.MaxInt64 / 8

// NumElements returns the product of the dims, checking that no dim is
// negative and that the product does not overflow. An empty shape (a
// scalar) has one element.
func NumElements(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: dim %d is %d", ErrShape, i, d)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("%w: %s has too many elements", ErrShape, FormatShape(shape))
		}
		n *= d
	}
	if n > maxElements || int64(int(n)) != n {
		return 0, fmt.Errorf("%w: %s has too many elements", ErrShape, FormatShape(shape))
	}
	return n, nil
}

// New returns a Dense with the dtype inferred from the Go slice type of
// data (a []uint16 is Uint16). It checks that the data matches the shape.
// The shape is copied; the data is not.
func New(shape []int64, data any) (Dense, error) {
	d := Dense{DType: DTypeOf(data), Shape: append([]int64{}, shape...), Data: data}
	return d, d.Validate()
}

// NewOf is New with an explicit dtype, for Float16 and BFloat16 data held
// in a []uint16.
func NewOf(dt DType, shape []int64, data any) (Dense, error) {
	d := Dense{DType: dt, Shape: append([]int64{}, shape...), Data: data}
	return d, d.Validate()
}

// Zeros returns a zero-filled Dense.
func Zeros(dt DType, shape []int64) (Dense, error) {
	n, err := NumElements(shape)
	if err != nil {
		return Dense{}, err
	}
	data, err := makeSlice(dt, int(n))
	if err != nil {
		return Dense{}, err
	}
	return Dense{DType: dt, Shape: append([]int64{}, shape...), Data: data}, nil
}

// Validate checks that the dtype is supported, that Data has its Go type
// and that its length equals the number of elements of Shape.
func (d Dense) Validate() error {
	if !d.DType.Valid() {
		return fmt.Errorf("tensor: unsupported dtype %v (data %T)", d.DType, d.Data)
	}
	if !goTypeMatches(d.DType, d.Data) {
		return fmt.Errorf("tensor: dtype %v cannot hold data of type %T", d.DType, d.Data)
	}
	n, err := NumElements(d.Shape)
	if err != nil {
		return err
	}
	if got := sliceLen(d.Data); int64(got) != n {
		return fmt.Errorf("%w: %s needs %d elements, data has %d", ErrShape, FormatShape(d.Shape), n, got)
	}
	return nil
}

// Len returns the number of elements held in Data.
func (d Dense) Len() int { return sliceLen(d.Data) }

// Rank returns the number of dims.
func (d Dense) Rank() int { return len(d.Shape) }

// Rows returns the size of axis 0, or 1 for a scalar.
func (d Dense) Rows() int64 {
	if len(d.Shape) == 0 {
		return 1
	}
	return d.Shape[0]
}

// String describes the array without its data: "float32[2 3]".
func (d Dense) String() string { return d.DType.String() + FormatShape(d.Shape) }

// FormatShape formats dims as "[2 3 -1]".
func FormatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, v := range shape {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Clone returns a deep copy.
func (d Dense) Clone() Dense {
	out := Dense{DType: d.DType, Shape: append([]int64{}, d.Shape...)}
	if d.Data != nil {
		v := reflect.ValueOf(d.Data)
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		out.Data = c.Interface()
	}
	return out
}

func sliceLen(data any) int {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Slice {
		return 0
	}
	return v.Len()
}
