package grad

import (
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestPermuteMatchesTranspose: over random shapes of rank 1 to 5 and
// random permutations, Permute gives gorgonia's Transpose values.
func TestPermuteMatchesTranspose(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	for c := range 200 {
		rank := 1 + r.Intn(5)
		shape := make([]int, rank)
		for a := range shape {
			shape[a] = 1 + r.Intn(4)
		}
		perm := r.Perm(rank)
		g := G.NewGraph()
		x := G.NewTensor(g, G.Float64, rank, G.WithShape(shape...), G.WithValue(rnd(r, shape...)), G.WithName("x"))
		ours, err := Permute(x, perm)
		if err != nil {
			t.Fatal(err)
		}
		if rank == 1 {
			continue // gorgonia has no transpose of a vector
		}
		theirs, err := G.Transpose(x, perm...)
		if err != nil {
			t.Fatal(err)
		}
		if err := G.NewTapeMachine(g).RunAll(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ours.Shape(), theirs.Shape()) {
			t.Fatalf("case %d: shape %v, gorgonia %v", c, ours.Shape(), theirs.Shape())
		}
		want, _, err := data64(theirs.Value())
		if err != nil {
			t.Fatal(err)
		}
		if got := ours.Value().Data().([]float64); !slices.Equal(got, want) {
			t.Fatalf("case %d: Permute(%v) of %v: %v, want %v", c, perm, shape, got, want)
		}
	}
}
