package quant

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/calib"
	"gonum.org/v1/gonum/mat"
)

// correlatedInputs returns n rows of dimension k with strongly
// correlated features and a few outlier channels: x = z·M + noise.
func correlatedInputs(rng *rand.Rand, n, k int) []float64 {
	latent := k / 4
	mix := make([]float64, latent*k)
	for i := range mix {
		mix[i] = rng.NormFloat64()
	}
	x := make([]float64, n*k)
	for r := range n {
		z := make([]float64, latent)
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		for j := range k {
			v := 0.1 * rng.NormFloat64()
			for i := range latent {
				v += z[i] * mix[i*k+j]
			}
			if j%17 == 0 {
				v *= 5
			}
			x[r*k+j] = v
		}
	}
	return x
}

// outputErr returns ‖X(W−Ŵ)ᵀ‖ directly from the rows.
func outputErr(x []float64, k int, w, wq Matrix) float64 {
	s := 0.0
	for r := 0; r < len(x)/k; r++ {
		for o := range w.Rows {
			d := 0.0
			for j := range k {
				d += x[r*k+j] * float64(w.At(o, j)-wq.At(o, j))
			}
			s += d * d
		}
	}
	return math.Sqrt(s)
}

func TestGPTQBeatsRTNOnCorrelatedInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const n, k, out = 512, 160, 24
	x := correlatedInputs(rng, n, k)
	h := NewHessian(k, 1)
	h.AddRows(0, x, nil)
	w := randMatrix(rng, out, k)
	for _, c := range []struct {
		s  Scheme
		g  Granularity
		ao bool
	}{
		{Scheme{4, true}, PerBlock(32), false},
		{Scheme{4, false}, PerBlock(32), false},
		{Scheme{4, true}, PerBlock(32), true},
		{Scheme{4, true}, PerChannel(), false},
		{Int8Sym, PerChannel(), false},
		{Scheme{4, true}, PerTensor(), false},
	} {
		t.Run(fmt.Sprintf("%v/%v/actorder=%v", c.s, c.g, c.ao), func(t *testing.T) {
			rtn, err := RTN(w, c.s, c.g)
			if err != nil {
				t.Fatal(err)
			}
			gq, err := GPTQ(w, h, c.s, c.g, GPTQOptions{ActOrder: c.ao})
			if err != nil {
				t.Fatal(err)
			}
			er, eg := outputErr(x, k, w, rtn.Dequantize()), outputErr(x, k, w, gq.Dequantize())
			t.Logf("‖XΔᵀ‖: RTN %.4g, GPTQ %.4g", er, eg)
			if eg >= er {
				t.Errorf("GPTQ output error %.4g not below RTN's %.4g", eg, er)
			}
			// The Hessian-based estimate agrees with the direct error.
			he := h.OutputError(w, gq.Dequantize())
			direct := eg / outputErr(x, k, w, NewMatrix(out, k))
			if math.Abs(he-direct) > 1e-6*max(1, direct) {
				t.Errorf("OutputError %.6g, direct %.6g", he, direct)
			}
			// So does the one derived from GPTQ's own errors.
			_, loss, err := gptq(w, h, c.s, c.g, GPTQOptions{ActOrder: c.ao})
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(loss) {
				t.Errorf("no trace from the run")
			}
			if fe := h.outputErrorOf(w, gq, loss); math.Abs(fe-he) > 1e-6*he {
				t.Errorf("output error from the run %.8g, from H %.8g", fe, he)
			}
			// Codes stay in range and their grids are the stored ones.
			qmin, qmax := c.s.Range()
			for _, v := range gq.Q {
				if v < qmin || v > qmax {
					t.Fatalf("code %d outside [%d, %d]", v, qmin, qmax)
				}
			}
		})
	}
}

func TestGPTQSmallCase(t *testing.T) {
	// With an identity Hessian GPTQ has nothing to trade: every column's
	// error propagates with weight U[i,j] = 0, so it equals RTN for
	// per-channel grids fitted to the same weights.
	rng := rand.New(rand.NewPCG(43, 44))
	w := randMatrix(rng, 3, 8)
	h := NewHessian(8, 1)
	for i := range 8 {
		h.H[0][i*8+i] = 1
	}
	h.N = 1
	gq, err := GPTQ(w, h, Int8Sym, PerChannel(), GPTQOptions{Damp: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	rtn, _ := RTN(w, Int8Sym, PerChannel())
	for i := range gq.Q {
		if gq.Q[i] != rtn.Q[i] {
			t.Fatalf("code %d: GPTQ %d, RTN %d", i, gq.Q[i], rtn.Q[i])
		}
	}
	// A dead input (never active) has its weights zeroed.
	h.H[0][2*8+2] = 0
	gq, err = GPTQ(w, h, Int8Sym, PerChannel(), GPTQOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for r := range 3 {
		if gq.Q[r*8+2] != 0 {
			t.Errorf("row %d: dead column code %d, want 0", r, gq.Q[r*8+2])
		}
	}
}

func TestGPTQDampsSingularHessians(t *testing.T) {
	// Rank-one inputs give a singular Hessian; damping must rescue it.
	rng := rand.New(rand.NewPCG(45, 46))
	k := 16
	x := make([]float64, 64*k)
	for r := range 64 {
		a := rng.NormFloat64()
		for j := range k {
			x[r*k+j] = a * float64(j+1)
		}
	}
	h := NewHessian(k, 1)
	h.AddRows(0, x, nil)
	if _, err := GPTQ(randMatrix(rng, 4, k), h, Scheme{4, true}, PerBlock(16), GPTQOptions{}); err != nil {
		t.Fatalf("singular Hessian: %v", err)
	}
	bad := NewHessian(k, 1)
	bad.H[0][0] = math.NaN()
	if _, err := GPTQ(randMatrix(rng, 4, k), bad, Scheme{4, true}, PerBlock(16), GPTQOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN Hessian: err = %v, want ErrInvalid", err)
	}
	if _, err := GPTQ(randMatrix(rng, 4, k+1), h, Scheme{4, true}, PerBlock(16), GPTQOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("mismatched Hessian: err = %v, want ErrInvalid", err)
	}
}

// TestInvCholeskyUpperFactorsTheInverse: the factor from one reversed
// factorisation is the upper Cholesky factor of the damped inverse
// (UᵀU(H+λI) = I, U upper with a positive diagonal) and equals the one
// obtained by inverting H and factorising the inverse, on a rank-deficient
// Hessian like those of short calibration runs (fewer rows than columns).
func TestInvCholeskyUpperFactorsTheInverse(t *testing.T) {
	const n, rows = 96, 40
	rng := rand.New(rand.NewPCG(3, 5))
	x := mat.NewDense(rows, n, nil)
	for i := range rows {
		for j := range n {
			x.Set(i, j, rng.NormFloat64()*float64(1+j%7))
		}
	}
	h := mat.NewSymDense(n, nil)
	h.SymOuterK(1, x.T())
	u, lambda, err := invCholeskyUpper(h, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	damped := mat.NewSymDense(n, nil)
	damped.CopySym(h)
	for i := range n {
		damped.SetSym(i, i, damped.At(i, i)+lambda)
	}
	var utu, id mat.Dense
	utu.Mul(u.T(), u)
	id.Mul(&utu, damped)
	for i := range n {
		for j := range n {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(id.At(i, j)-want) > 1e-8 {
				t.Fatalf("UᵀU(H+λI)[%d,%d] = %g", i, j, id.At(i, j))
			}
			if j < i && u.At(i, j) != 0 {
				t.Fatalf("U[%d,%d] = %g below the diagonal", i, j, u.At(i, j))
			}
		}
		if !(u.At(i, i) > 0) {
			t.Fatalf("U[%d,%d] = %g", i, i, u.At(i, i))
		}
	}
	ref, err := invertThenFactor(h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for j := i; j < n; j++ {
			if d := math.Abs(u.At(i, j) - ref.At(i, j)); d > 1e-9*math.Abs(ref.At(i, i)) {
				t.Fatalf("U[%d,%d] = %g, factor of the inverse %g", i, j, u.At(i, j), ref.At(i, j))
			}
		}
	}
}

// BenchmarkGPTQFactor times invCholeskyUpper against the inverse-then-
// factorise path it replaced (the reference, measured in the same run),
// on a 1024-wide Hessian.
func BenchmarkGPTQFactor(b *testing.B) {
	const n = 1024
	rng := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(2*n, n, nil)
	for i := range 2 * n {
		for j := range n {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	h := mat.NewSymDense(n, nil)
	h.SymOuterK(1, x.T())
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := invCholeskyUpper(h, 0.01); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("inverse-then-factor", func(b *testing.B) {
		for b.Loop() {
			if _, err := invertThenFactor(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// invertThenFactor is the path invCholeskyUpper replaced: H damped by 1%
// of its mean diagonal and inverted, then the inverse factorised.
func invertThenFactor(h *mat.SymDense) (*mat.Dense, error) {
	inv, _, err := calib.DampedInverseLambda(h, 0.01)
	if err != nil {
		return nil, err
	}
	var ch mat.Cholesky
	if !ch.Factorize(inv) {
		return nil, errors.New("inverse does not factorise")
	}
	var u mat.TriDense
	ch.UTo(&u)
	return mat.DenseCopyOf(&u), nil
}
