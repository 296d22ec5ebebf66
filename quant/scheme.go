package quant

import (
	"fmt"
	"math"
)

// Scheme is an integer grid: its width and whether it is symmetric.
//
// A symmetric scheme stores signed integers over the restricted range
// [−(2^(b−1)−1), 2^(b−1)−1] with zero point 0 (int8: [−127, 127]), so that
// +x and −x quantize to opposite codes. An asymmetric scheme stores
// unsigned integers over [0, 2^b−1] with a zero point in that range.
type Scheme struct {
	Bits      int
	Symmetric bool
}

// Int8Sym is the weight scheme of QDQ and dynamic int8.
var Int8Sym = Scheme{Bits: 8, Symmetric: true}

// Uint8Asym is the activation scheme of QDQ int8.
var Uint8Asym = Scheme{Bits: 8, Symmetric: false}

// Validate checks that the scheme is one quant can store.
func (s Scheme) Validate() error {
	if s.Bits != 4 && s.Bits != 8 {
		return fmt.Errorf("%w: %d-bit integers (want 4 or 8)", ErrUnsupported, s.Bits)
	}
	return nil
}

// Range returns the smallest and largest code.
func (s Scheme) Range() (qmin, qmax int32) {
	if s.Symmetric {
		m := int32(1)<<(s.Bits-1) - 1
		return -m, m
	}
	return 0, int32(1)<<s.Bits - 1
}

// Signed reports whether codes are stored as signed integers.
func (s Scheme) Signed() bool { return s.Symmetric }

func (s Scheme) String() string {
	kind := "asym"
	if s.Symmetric {
		kind = "sym"
	}
	return fmt.Sprintf("%d-bit %s", s.Bits, kind)
}

// Grid is the scale and zero point of one quantization group: a real
// value x is stored as clamp(round(x/Scale) + Zero) and read back as
// (q − Zero)·Scale.
type Grid struct {
	Scale float32
	Zero  int32
}

// smallestNormal is the smallest normal float32; a scale below it would
// make 1/scale overflow in onnxruntime's float32 arithmetic.
const smallestNormal = 0x1p-126

// Fit returns the grid covering [lo, hi], first widened to include 0 so
// that zero (padding, ReLU outputs) is exact. Symmetric: scale =
// max(|lo|, |hi|)/qmax. Asymmetric: scale = (hi−lo)/(qmax−qmin), zero =
// round(qmin − lo/scale). A degenerate range gets scale 1.
func (s Scheme) Fit(lo, hi float32) (Grid, error) {
	if !finite(lo) || !finite(hi) {
		return Grid{}, fmt.Errorf("%w: range [%v, %v] is not finite", ErrInvalid, lo, hi)
	}
	if lo > hi {
		return Grid{}, fmt.Errorf("%w: range [%v, %v] is empty", ErrInvalid, lo, hi)
	}
	lo, hi = min(lo, 0), max(hi, 0)
	qmin, qmax := s.Range()
	if s.Symmetric {
		a := float64(max(-lo, hi))
		scale := float32(a / float64(qmax))
		if scale < smallestNormal {
			scale = 1
		}
		return Grid{Scale: scale}, nil
	}
	scale := float32((float64(hi) - float64(lo)) / float64(qmax-qmin))
	if scale < smallestNormal {
		return Grid{Scale: 1, Zero: qmin}, nil
	}
	z := math.RoundToEven(float64(qmin) - float64(lo)/float64(scale))
	z = max(float64(qmin), min(float64(qmax), z))
	return Grid{Scale: scale, Zero: int32(z)}, nil
}

// FitValues fits a grid to the range of vals.
func (s Scheme) FitValues(vals []float32) (Grid, error) {
	lo, hi := float32(0), float32(0)
	for _, v := range vals {
		if v-v != 0 { // NaN or ±Inf
			return Grid{}, fmt.Errorf("%w: value %v", ErrInvalid, v)
		}
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return s.Fit(lo, hi)
}

// Quantize returns the code of x: round half to even of x/scale, plus the
// zero point, clamped to the scheme's range (as ONNX QuantizeLinear does).
func (s Scheme) Quantize(x float32, g Grid) int32 {
	qmin, qmax := s.Range()
	q := math.RoundToEven(float64(x)/float64(g.Scale)) + float64(g.Zero)
	if q != q { // NaN
		return g.Zero
	}
	return int32(max(float64(qmin), min(float64(qmax), q)))
}

// Dequantize returns the real value of code q.
func Dequantize(q int32, g Grid) float32 { return float32(q-g.Zero) * g.Scale }

func finite(v float32) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}
