package grad

import (
	"math/rand"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// TestRepeatMatchesDefinition: over random shapes and factors (rank 1
// to 5, factors 1 to 3), Repeat's output element at index i is the
// input's at ⌊i/f⌋, and BlockSum adds each output element into the
// input element it repeats.
func TestRepeatMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for c := range 300 {
		rank := 1 + r.Intn(5)
		small, f := make(tensor.Shape, rank), make([]int, rank)
		for a := range rank {
			small[a], f[a] = 1+r.Intn(3), 1+r.Intn(3)
		}
		xv := rnd(r, small...)
		x := xv.Data().([]float64)
		yv, err := repeatOp{f}.Do(xv)
		if err != nil {
			t.Fatal(err)
		}
		y := yv.Data().([]float64)
		big := yv.Shape().Clone()
		want := make([]float64, len(x))
		st := strides(small)
		eachIndex(big, func(idx []int, off int) {
			src := 0
			for a, i := range idx {
				src += i / f[a] * st[a]
			}
			if y[off] != x[src] {
				t.Fatalf("case %d: Repeat(%v) of %v: element %v is %g, want %g", c, f, small, idx, y[off], x[src])
			}
			want[src] += y[off]
		})
		sv, err := blockSumOp{f}.Do(yv)
		if err != nil {
			t.Fatal(err)
		}
		if got := sv.Data().([]float64); !slices.EqualFunc(got, want, func(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }) {
			t.Fatalf("case %d: BlockSum(%v) of %v: %v, want %v", c, f, big, got, want)
		}
	}
}

// BenchmarkBlockSum times the gradient of a per-channel parameter
// broadcast over 64 samples of 32 channels of 14×14 (a BatchNorm's
// scale): BlockSum from [64, 32, 14, 14] to [1, 32, 1, 1].
func BenchmarkBlockSum(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	y := rnd(r, 64, 32, 14, 14)
	op := blockSumOp{[]int{64, 1, 14, 14}}
	for b.Loop() {
		if _, err := op.Do(y); err != nil {
			b.Fatal(err)
		}
	}
}
