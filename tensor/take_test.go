package tensor

import (
	"slices"
	"testing"
)

func TestTakeMiddleAxis(t *testing.T) {
	// [2, 3, 2]: position p of axis 1 holds 10·row + 2·p + last.
	var v []float32
	for r := range 2 {
		for p := range 3 {
			for l := range 2 {
				v = append(v, float32(10*r+2*p+l))
			}
		}
	}
	d, err := New([]int64{2, 3, 2}, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Take(1, []int64{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{4, 5, 0, 1, 14, 15, 10, 11}
	if !slices.Equal(got.Shape, []int64{2, 2, 2}) || !slices.Equal(got.Data.([]float32), want) {
		t.Fatalf("got %v %v, want [2 2 2] %v", got.Shape, got.Data, want)
	}
	if _, err := d.Take(1, []int64{3}); err == nil {
		t.Fatal("a position past the axis was taken")
	}
	if _, err := d.Take(3, []int64{0}); err == nil {
		t.Fatal("an axis past the rank was taken")
	}
}
