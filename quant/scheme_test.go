package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

var allSchemes = []Scheme{{8, true}, {8, false}, {4, true}, {4, false}}

// randRange draws a range that may lie on one side of zero, straddle it
// or be degenerate.
func randRange(rng *rand.Rand) (lo, hi float32) {
	a := float32(rng.NormFloat64() * math.Pow(10, rng.Float64()*6-3))
	b := float32(rng.NormFloat64() * math.Pow(10, rng.Float64()*6-3))
	switch rng.IntN(8) {
	case 0:
		return 0, 0
	case 1:
		return a, a
	}
	return min(a, b), max(a, b)
}

func TestFitKeepsZeroExactAndCoversRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range allSchemes {
		qmin, qmax := s.Range()
		for range 2000 {
			lo, hi := randRange(rng)
			g, err := s.Fit(lo, hi)
			if err != nil {
				t.Fatalf("%v Fit(%v, %v): %v", s, lo, hi, err)
			}
			if g.Zero < qmin || g.Zero > qmax {
				t.Fatalf("%v Fit(%v, %v): zero %d outside [%d, %d]", s, lo, hi, g.Zero, qmin, qmax)
			}
			if got := Dequantize(s.Quantize(0, g), g); got != 0 {
				t.Fatalf("%v Fit(%v, %v) = %+v: zero reads back as %v", s, lo, hi, g, got)
			}
			// Every value of the widened range is within half a step (plus
			// float32 rounding of the scale) of its reading.
			for _, x := range []float32{lo, hi, (lo + hi) / 2} {
				back := Dequantize(s.Quantize(x, g), g)
				if d := math.Abs(float64(back - x)); d > 0.5*float64(g.Scale)*(1+1e-5)+1e-6*math.Abs(float64(x)) {
					t.Fatalf("%v Fit(%v, %v) = %+v: %v reads back as %v (error %g > scale/2)", s, lo, hi, g, x, back, d)
				}
			}
		}
	}
}

func TestFitFormulas(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		lo, hi := randRange(rng)
		lo, hi = min(lo, 0), max(hi, 0)
		if hi-lo < 1e-20 {
			continue
		}
		// Symmetric int8: ±absmax over [−127, 127].
		g, _ := Int8Sym.Fit(lo, hi)
		absmax := max(-lo, hi)
		if want := absmax / 127; math.Abs(float64(g.Scale-want)) > 1e-6*float64(want) || g.Zero != 0 {
			t.Fatalf("int8 sym Fit(%v, %v) = %+v, want scale %v zero 0", lo, hi, g, want)
		}
		if q := Int8Sym.Quantize(absmax, g); q != 127 {
			t.Fatalf("absmax %v quantizes to %d, want 127", absmax, q)
		}
		// Asymmetric uint8: s = (max−min)/255, z = round(−min/s).
		g, _ = Uint8Asym.Fit(lo, hi)
		s := (hi - lo) / 255
		z := math.RoundToEven(float64(-lo) / float64(g.Scale))
		if math.Abs(float64(g.Scale-s)) > 1e-6*float64(s) || float64(g.Zero) != z {
			t.Fatalf("uint8 asym Fit(%v, %v) = %+v, want scale %v zero %v", lo, hi, g, s, z)
		}
	}
}

func TestQuantizeRoundTripsCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range allSchemes {
		qmin, qmax := s.Range()
		for range 200 {
			lo, hi := randRange(rng)
			g, err := s.Fit(lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			for q := qmin; q <= qmax; q++ {
				if back := s.Quantize(Dequantize(q, g), g); back != q {
					t.Fatalf("%v grid %+v: code %d reads as %v, quantizes to %d", s, g, q, Dequantize(q, g), back)
				}
			}
		}
	}
}

func TestQuantizeClampsAndRoundsHalfToEven(t *testing.T) {
	g := Grid{Scale: 1, Zero: 0}
	cases := []struct {
		s    Scheme
		x    float32
		want int32
	}{
		{Int8Sym, 1e9, 127},
		{Int8Sym, -1e9, -127},
		{Int8Sym, 2.5, 2},
		{Int8Sym, -2.5, -2},
		{Int8Sym, 3.5, 4},
		{Int8Sym, float32(math.Copysign(0, -1)), 0},
		{Int8Sym, float32(math.NaN()), 0},
		{Uint8Asym, -3, 0},
		{Uint8Asym, 300, 255},
		{Scheme{4, true}, 9, 7},
		{Scheme{4, false}, 16, 15},
	}
	for _, c := range cases {
		if got := c.s.Quantize(c.x, g); got != c.want {
			t.Errorf("%v Quantize(%v) = %d, want %d", c.s, c.x, got, c.want)
		}
	}
}

func TestFitRejectsBadRanges(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, r := range [][2]float32{{nan, 1}, {0, nan}, {-inf, 0}, {0, inf}, {2, 1}} {
		if _, err := Int8Sym.Fit(r[0], r[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Fit(%v, %v): err = %v, want ErrInvalid", r[0], r[1], err)
		}
	}
	if _, err := Uint8Asym.FitValues([]float32{1, nan}); !errors.Is(err, ErrInvalid) {
		t.Errorf("FitValues with NaN: err = %v, want ErrInvalid", err)
	}
	if err := (Scheme{Bits: 3}).Validate(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("3-bit scheme: err = %v, want ErrUnsupported", err)
	}
}
