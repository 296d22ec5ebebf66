package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func randMatrix(rng *rand.Rand, rows, cols int) Matrix {
	m := NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	return m
}

var allGrans = []Granularity{PerTensor(), PerChannel(), PerBlock(16), PerBlock(32), PerBlock(7)}

func TestRTNErrorWithinHalfStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range allSchemes {
		for _, g := range allGrans {
			rows, cols := 1+rng.IntN(9), 1+rng.IntN(70)
			w := randMatrix(rng, rows, cols)
			q, err := RTN(w, s, g)
			if err != nil {
				t.Fatalf("%v %v: %v", s, g, err)
			}
			d := q.Dequantize()
			for r := range rows {
				for c := range cols {
					grid := q.Grids[q.GridIndex(r, c)]
					if e := math.Abs(float64(d.At(r, c) - w.At(r, c))); e > 0.5*float64(grid.Scale)*(1+1e-5) {
						t.Fatalf("%v %v (%d×%d): element (%d,%d) error %g > scale/2 = %g", s, g, rows, cols, r, c, e, grid.Scale/2)
					}
				}
			}
		}
	}
}

func TestRTNGroupsAreIndependent(t *testing.T) {
	// Scaling one block by 1000 must leave the codes of the other blocks
	// alone.
	rng := rand.New(rand.NewPCG(9, 10))
	w := randMatrix(rng, 3, 64)
	q1, _ := RTN(w, Scheme{4, false}, PerBlock(16))
	for c := 16; c < 32; c++ {
		w.Data[1*64+c] *= 1000
	}
	q2, _ := RTN(w, Scheme{4, false}, PerBlock(16))
	for r := range 3 {
		for c := range 64 {
			inBlock := r == 1 && c >= 16 && c < 32
			if !inBlock && q1.Q[r*64+c] != q2.Q[r*64+c] {
				t.Fatalf("code (%d,%d) changed from %d to %d", r, c, q1.Q[r*64+c], q2.Q[r*64+c])
			}
		}
	}
}

func TestRTNExactOnGridValues(t *testing.T) {
	// A matrix made of codes times a scale (with the extremes present)
	// quantizes back to the same codes.
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range []Scheme{Int8Sym, {4, true}} {
		_, qmax := s.Range()
		w := NewMatrix(4, 32)
		codes := make([]int32, len(w.Data))
		for i := range codes {
			codes[i] = int32(rng.IntN(int(2*qmax+1))) - qmax
			if i%32 == 0 {
				codes[i] = qmax
			}
			w.Data[i] = float32(codes[i]) * 0.125
		}
		q, err := RTN(w, s, PerChannel())
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range codes {
			if q.Q[i] != c {
				t.Fatalf("%v: code %d = %d, want %d", s, i, q.Q[i], c)
			}
		}
	}
}

func TestRTNRejectsNonFinite(t *testing.T) {
	w := Matrix{Rows: 1, Cols: 2, Data: []float32{1, float32(math.Inf(-1))}}
	if _, err := RTN(w, Int8Sym, PerChannel()); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
	if _, err := RTN(Matrix{Rows: 2, Cols: 2, Data: []float32{1}}, Int8Sym, PerChannel()); !errors.Is(err, ErrInvalid) {
		t.Errorf("short data: err = %v, want ErrInvalid", err)
	}
	if _, err := RTN(NewMatrix(1, 4), Int8Sym, PerBlock(0)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("block 0: err = %v, want ErrUnsupported", err)
	}
}
