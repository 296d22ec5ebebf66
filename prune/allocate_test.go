package prune

import (
	"errors"
	"testing"
)

// Three layers of 10, 20 and 10 channels, ratio 0.5 (keep 20 of 40),
// s_max 0.8: minimums 2, 4 and 2 (8 kept), 12 more shared 1:2:3 by score:
// 2, 4 and 6 → keeps 4, 8, 8.
func TestAllocateProportional(t *testing.T) {
	got, err := Allocate([]int{10, 20, 10}, []float64{1, 2, 3}, 0.5, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{4, 8, 8}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keep %v, want %v", got, want)
		}
	}
}

// A cap: layer 2 (size 4, min 1) would get 9·(8/10) = 7.2 more but has
// room for 3, so it keeps all 4 and the remaining 6 go to layers 0 and 1
// by score 1:1: both keep 1 + 3 = 4. Total 12 = 16 − round(0.25·16).
func TestAllocateCapRedistributes(t *testing.T) {
	got, err := Allocate([]int{6, 6, 4}, []float64{1, 1, 8}, 0.25, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{4, 4, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keep %v, want %v", got, want)
		}
	}
}

// Largest remainder: three layers of 3 at s_max 0.5 keep at least
// ⌈0.5·3⌉ = 2 each (6); ratio 0.2 keeps 9 − round(1.8) = 7, so one extra
// channel is shared 1/3 each: the remainders tie and the lowest index
// wins. Ratio 0.6 keeps 4 < 6: an error.
func TestAllocateRemainderAndLimits(t *testing.T) {
	got, err := Allocate([]int{3, 3, 3}, []float64{1, 1, 1}, 0.2, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{3, 2, 2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keep %v, want %v", got, want)
		}
	}
	if _, err := Allocate([]int{3, 3, 3}, []float64{1, 1, 1}, 0.6, 0.5); !errors.Is(err, ErrTarget) {
		t.Errorf("minimums above the kept total: err %v, want ErrTarget", err)
	}
}
