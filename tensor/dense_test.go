package tensor

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestNumElements(t *testing.T) {
	tests := []struct {
		shape   []int64
		want    int64
		wantErr bool
	}{
		{nil, 1, false},
		{[]int64{}, 1, false},
		{[]int64{0}, 0, false},
		{[]int64{2, 3, 4}, 24, false},
		{[]int64{0, math.MaxInt64}, 0, false},
		{[]int64{-1, 3}, 0, true},
		{[]int64{1 << 31, 1 << 31, 4}, 0, true},
		{[]int64{math.MaxInt64, 2}, 0, true},
		{[]int64{math.MaxInt64 / 8, 1}, math.MaxInt64 / 8, false},
		{[]int64{math.MaxInt64/8 + 1}, 0, true},
	}
	for _, tt := range tests {
		got, err := NumElements(tt.shape)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("NumElements(%v) = %d, %v; want %d, err %v", tt.shape, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrShape) {
			t.Errorf("NumElements(%v): error %v is not ErrShape", tt.shape, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New([]int64{2, 2}, []float32{1, 2, 3}); err == nil {
		t.Error("New accepted 3 elements for [2 2]")
	}
	if _, err := New([]int64{2}, []string{"a", "b"}); err == nil {
		t.Error("New accepted []string")
	}
	if _, err := NewOf(Float16, []int64{1}, []float32{1}); err == nil {
		t.Error("NewOf accepted float16 held in []float32")
	}
	d, err := NewOf(Float16, []int64{1}, []uint16{0x3c00})
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != "float16[1]" {
		t.Errorf("String() = %q", d.String())
	}
	s, err := New(nil, []int64{7})
	if err != nil || s.Rank() != 0 || s.Rows() != 1 {
		t.Errorf("scalar: %v %v", s, err)
	}
}

func TestFloatConversions(t *testing.T) {
	tests := []struct {
		d    Dense
		want []float64
	}{
		{mustNew(t, Float32, []float32{1.5, -2}), []float64{1.5, -2}},
		{mustNew(t, Float64, []float64{1.5, math.Inf(-1)}), []float64{1.5, math.Inf(-1)}},
		{mustNew(t, Int8, []int8{-128, 127}), []float64{-128, 127}},
		{mustNew(t, Uint8, []uint8{0, 255}), []float64{0, 255}},
		{mustNew(t, Int16, []int16{-3, 3}), []float64{-3, 3}},
		{mustNew(t, Uint16, []uint16{0x3c00, 7}), []float64{0x3c00, 7}},
		{mustNew(t, Float16, []uint16{0x3c00, 0xc000}), []float64{1, -2}},
		{mustNew(t, BFloat16, []uint16{0x3f80, 0xc000}), []float64{1, -2}},
		{mustNew(t, Int32, []int32{-5, 5}), []float64{-5, 5}},
		{mustNew(t, Uint32, []uint32{5, 1 << 31}), []float64{5, 1 << 31}},
		{mustNew(t, Int64, []int64{-1 << 40, 9}), []float64{-1 << 40, 9}},
		{mustNew(t, Uint64, []uint64{1 << 63, 0}), []float64{1 << 63, 0}},
		{mustNew(t, Bool, []bool{true, false}), []float64{1, 0}},
	}
	for _, tt := range tests {
		got, err := tt.d.Float64s()
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v Float64s() = %v, %v; want %v", tt.d.DType, got, err, tt.want)
		}
		f32, err := tt.d.Float32s()
		if err != nil || len(f32) != len(tt.want) || float64(f32[0]) != float64(float32(tt.want[0])) {
			t.Errorf("%v Float32s() = %v, %v", tt.d.DType, f32, err)
		}
	}
	f := mustNew(t, Float32, []float32{1, 2})
	got, _ := f.Float32s()
	got[0] = 9
	if f.Data.([]float32)[0] != 9 {
		t.Error("Float32s on float32 data should not copy")
	}
	if _, err := f.Int64s(); err == nil {
		t.Error("Int64s accepted float data")
	}
	ints, err := mustNew(t, Int32, []int32{3, -1}).Int64s()
	if err != nil || !reflect.DeepEqual(ints, []int64{3, -1}) {
		t.Errorf("Int64s = %v, %v", ints, err)
	}
}

func TestSliceConcat(t *testing.T) {
	d, err := New([]int64{3, 2}, []int32{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Slice(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Slice(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Shape, []int64{2, 2}) || !reflect.DeepEqual(b.Data, []int32{3, 4, 5, 6}) {
		t.Errorf("Slice(1,3) = %v %v", b.Shape, b.Data)
	}
	empty, err := d.Slice(3, 3)
	if err != nil || empty.Shape[0] != 0 || empty.Len() != 0 {
		t.Errorf("Slice(3,3) = %v, %v", empty, err)
	}
	c, err := Concat(a, empty, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, d) {
		t.Errorf("Concat = %v, want %v", c, d)
	}
	c.Data.([]int32)[0] = 100
	if d.Data.([]int32)[0] != 1 {
		t.Error("Concat shares memory with its parts")
	}
	for _, bad := range [][2]int64{{-1, 1}, {2, 1}, {0, 4}} {
		if _, err := d.Slice(bad[0], bad[1]); err == nil {
			t.Errorf("Slice(%d,%d) accepted", bad[0], bad[1])
		}
	}
	other, _ := New([]int64{1, 3}, []int32{1, 2, 3})
	if _, err := Concat(d, other); err == nil {
		t.Error("Concat accepted mismatched row shapes")
	}
	f, _ := New([]int64{1, 2}, []float32{1, 2})
	if _, err := Concat(d, f); err == nil {
		t.Error("Concat accepted mixed dtypes")
	}
	if _, err := Concat(); err == nil {
		t.Error("Concat of nothing accepted")
	}
}

func TestZerosClone(t *testing.T) {
	for dt := range dtypeNames {
		z, err := Zeros(dt, []int64{2, 3})
		if err != nil {
			t.Fatalf("Zeros(%v): %v", dt, err)
		}
		if err := z.Validate(); err != nil {
			t.Errorf("Zeros(%v) invalid: %v", dt, err)
		}
		c := z.Clone()
		if !reflect.DeepEqual(c, z) {
			t.Errorf("Clone(%v) differs", dt)
		}
	}
	if _, err := Zeros(Float32, []int64{1 << 62, 4}); err == nil {
		t.Error("Zeros accepted an overflowing shape")
	}
}

func mustNew(t *testing.T, dt DType, data any) Dense {
	t.Helper()
	d, err := NewOf(dt, []int64{int64(sliceLen(data))}, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConvert(t *testing.T) {
	f64, _ := New([]int64{3}, []float64{1.5, -2, 65504})
	got, err := f64.Convert(Float32)
	if err != nil || !reflect.DeepEqual(got.Data, []float32{1.5, -2, 65504}) {
		t.Errorf("float64→float32: %v %v", got.Data, err)
	}
	h, err := f64.Convert(Float16)
	if err != nil || !reflect.DeepEqual(h.Data, []uint16{0x3e00, 0xc000, 0x7bff}) || h.DType != Float16 {
		t.Errorf("float64→float16: %v %v", h, err)
	}
	if _, err := f64.Convert(Int64); err == nil {
		t.Error("float→int accepted")
	}
	i8, _ := New([]int64{2}, []int8{-3, 4})
	got, err = i8.Convert(Float32)
	if err != nil || !reflect.DeepEqual(got.Data, []float32{-3, 4}) {
		t.Errorf("int8→float32: %v %v", got.Data, err)
	}
	big, _ := New([]int64{1}, []int64{1<<62 + 1})
	got, err = big.Convert(Uint64)
	if err != nil || got.Data.([]uint64)[0] != 1<<62+1 {
		t.Errorf("int64→uint64 lost precision: %v %v", got.Data, err)
	}
	u, _ := New([]int64{1}, []uint64{1<<62 + 1})
	got, err = u.Convert(Int64)
	if err != nil || got.Data.([]int64)[0] != 1<<62+1 {
		t.Errorf("uint64→int64 lost precision: %v %v", got.Data, err)
	}
	same, _ := i8.Convert(Int8)
	if !reflect.DeepEqual(same, i8) {
		t.Error("same-type convert changed data")
	}
}

// Float64sInto converts float32 and float64 data into the buffer given
// when it is large enough, and any other type as Float64s does.
func TestFloat64sInto(t *testing.T) {
	buf := make([]float64, 4)
	f32, _ := New([]int64{3}, []float32{1.5, -2, 3})
	got, err := f32.Float64sInto(buf)
	if err != nil || &got[0] != &buf[0] || len(got) != 3 || got[0] != 1.5 || got[1] != -2 || got[2] != 3 {
		t.Errorf("float32 into a buffer of 4: %v, %v (reused: %v)", got, err, err == nil && &got[0] == &buf[0])
	}
	f64, _ := New([]int64{2}, []float64{7, 8})
	if got, err := f64.Float64sInto(buf); err != nil || &got[0] != &buf[0] || len(got) != 2 || got[1] != 8 {
		t.Errorf("float64 into a buffer of 4: %v, %v", got, err)
	}
	if got, err := f32.Float64sInto(buf[:0:1]); err != nil || len(got) != 3 || got[2] != 3 {
		t.Errorf("float32 into a buffer of 1: %v, %v", got, err)
	}
	i8, _ := New([]int64{2}, []int8{-1, 4})
	if got, err := i8.Float64sInto(buf); err != nil || len(got) != 2 || got[0] != -1 || got[1] != 4 {
		t.Errorf("int8: %v, %v", got, err)
	}
}
