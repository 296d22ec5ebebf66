package calib

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// softmaxRows returns random attention probabilities: each row sums to 1.
func softmaxRows(rng *rand.Rand, rows, keys int) []float32 {
	v := make([]float32, rows*keys)
	for r := range rows {
		s := 0.0
		for k := range keys {
			e := math.Exp(2 * rng.NormFloat64())
			v[r*keys+k] = float32(e)
			s += e
		}
		for k := range keys {
			v[r*keys+k] /= float32(s)
		}
	}
	return v
}

func TestAttentionConcentrationSumsToQueries(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const b, h, q, k = 3, 4, 5, 6
	data := softmaxRows(rng, b*h*q, k)
	for _, shape := range [][]int64{{b, h, q, k}, {b * h, q, k}} {
		d, _ := tensor.New(shape, data)
		s, err := AttentionConcentration(d, b)
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range s {
			total := 0.0
			for _, x := range row {
				total += x
			}
			// Every head and query row contributes probability 1.
			if math.Abs(total-h*q) > 1e-4 {
				t.Errorf("shape %v sample %d: scores sum to %v, want %d", shape, i, total, h*q)
			}
		}
	}
	// A key every query attends to fully scores heads·queries.
	one := make([]float32, 1*2*3*4)
	for r := range 6 {
		one[r*4+2] = 1
	}
	d, _ := tensor.New([]int64{1, 2, 3, 4}, one)
	s, _ := AttentionConcentration(d, 1)
	if s[0][2] != 6 || s[0][0] != 0 {
		t.Errorf("scores %v, want key 2 = 6 and others 0", s[0])
	}
	if _, err := AttentionConcentration(d, 2); err == nil {
		t.Error("4-D attention for the wrong batch accepted")
	}
}

func TestNormalizeTokenWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	for range 100 {
		n := 1 + rng.IntN(40)
		s := make([]float64, n)
		for i := range s {
			s[i] = rng.Float64() * 10
		}
		w := NormalizeTokenWeights(s, DefaultTokenRange[0], DefaultTokenRange[1])
		mean, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
		for _, x := range w {
			mean += x / float64(n)
			mn, mx = min(mn, x), max(mx, x)
		}
		if math.Abs(mean-1) > 1e-12 {
			t.Fatalf("mean %v, want 1", mean)
		}
		if n > 1 && mx > mn && math.Abs(mx/mn-DefaultTokenRange[1]/DefaultTokenRange[0]) > 1e-9*mx/mn {
			t.Fatalf("max/min %v, want %v", mx/mn, DefaultTokenRange[1]/DefaultTokenRange[0])
		}
		// Order is kept.
		for i := range s {
			for j := range s {
				if s[i] < s[j] && w[i] > w[j] {
					t.Fatalf("order broken: %v < %v but %v > %v", s[i], s[j], w[i], w[j])
				}
			}
		}
	}
	for _, x := range NormalizeTokenWeights([]float64{3, 3, 3}, 0.005, 1) {
		if x != 1 {
			t.Errorf("equal scores give %v, want 1", x)
		}
	}
}
