package calib

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomRows returns m rows of n values, a quarter of them zero (the
// zeros a Relu leaves, which the update skips).
func randomRows(rng *rand.Rand, m, n int) []float64 {
	x := make([]float64, m*n)
	for i := range x {
		if rng.IntN(4) > 0 {
			x[i] = rng.NormFloat64()
		}
	}
	return x
}

// takeHessian is H = (2/N)·S of g, row-major with both triangles
// filled (the square Hessian TakeDampedInverse never builds).
func takeHessian(g *Gram) []float64 {
	n := g.Cols
	h := make([]float64, n*n)
	g.scaledUpper(h)
	for i := range n {
		for j := i + 1; j < n; j++ {
			h[j*n+i] = h[i*n+j]
		}
	}
	return h
}

// The packed Gram holds the sums a square mat.SymDense rank-k update
// gives, bit for bit, over several batches: halving the storage changes
// no statistic.
func TestPackedGramMatchesSquareRankUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 37
	g := NewGram(n)
	square := mat.NewSymDense(n, nil)
	for _, m := range []int{1, 16, 5, 64} {
		x := randomRows(rng, m, n)
		g.Add(x)
		square.SymRankK(square, 1, mat.NewDense(m, n, x).T())
	}
	if len(g.S) != n*(n+1)/2 {
		t.Fatalf("%d stored values for %d columns, want %d", len(g.S), n, n*(n+1)/2)
	}
	for i := range n {
		for j, v := range g.Row(i) {
			if v != square.At(i, i+j) {
				t.Fatalf("S[%d,%d] = %v, square update gives %v", i, i+j, v, square.At(i, i+j))
			}
		}
	}
	if g.N != 86 {
		t.Errorf("N = %v, want 86", g.N)
	}
}

// TakeDampedInverse, which builds the damped Hessian from the packed
// sums in the inverse's own buffer, gives DampedInverseRows's inverse of
// takeHessian bit for bit: on a well-posed Gram and on a rank-deficient
// one that needs retried dampings. GramOf round-trips a square Hessian.
func TestTakeDampedInverseMatchesSquareHessian(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 30
	for _, tc := range []struct {
		name string
		rows int
		damp float64
	}{{"full rank", 90, 0.01}, {"rank 4", 4, 1e-18}} {
		x := randomRows(rng, tc.rows, n)
		a, b := NewGram(n), NewGram(n)
		a.Add(x)
		b.Add(x)
		h := takeHessian(a)
		want, err := DampedInverseRows(h, n, tc.damp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.TakeDampedInverse(tc.damp)
		if err != nil {
			t.Fatal(err)
		}
		if b.S != nil {
			t.Errorf("%s: packed sums kept after TakeDampedInverse", tc.name)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: inverse[%d,%d] = %v, from the square Hessian %v", tc.name, i/n, i%n, got[i], want[i])
			}
		}
		back := takeHessian(GramOf(h, n))
		for i := range h {
			if back[i] != h[i] {
				t.Fatalf("%s: GramOf round trip [%d,%d] = %v, want %v", tc.name, i/n, i%n, back[i], h[i])
			}
		}
	}
}

// BenchmarkGramAdd times the packed update of 64 rows of a 2048-wide
// layer against the square mat.SymDense update it replaced (reference).
func BenchmarkGramAdd(b *testing.B) {
	const n, m = 2048, 64
	x := randomRows(rand.New(rand.NewPCG(1, 2)), m, n)
	b.Run("packed", func(b *testing.B) {
		g := NewGram(n)
		for b.Loop() {
			g.Add(x)
		}
	})
	b.Run("square-reference", func(b *testing.B) {
		s := mat.NewSymDense(n, nil)
		for b.Loop() {
			s.SymRankK(s, 1, mat.NewDense(m, n, x).T())
		}
	})
}
