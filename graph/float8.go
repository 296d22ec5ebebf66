package graph

import (
	"fmt"
	"math"

	"github.com/pare-dev/pare/onnx"
)

// minifloat describes a small binary float format: a sign bit (except
// E8M0), exp exponent bits, mant mantissa bits.
type minifloat struct {
	exp, mant uint
	bias      int
	// ieee: an all-ones exponent holds ±Inf (mantissa 0) and NaN (E5M2).
	ieee bool
	// fn: no infinities; only the all-ones pattern is NaN (E4M3FN).
	fn bool
	// uz: no negative zero; 0x80 is the only NaN (the FNUZ formats).
	uz bool
	// maxCode is the bit pattern of the largest finite value.
	maxCode uint8
}

var (
	fmtE4M3FN   = minifloat{exp: 4, mant: 3, bias: 7, fn: true, maxCode: 0x7e}
	fmtE4M3FNUZ = minifloat{exp: 4, mant: 3, bias: 8, uz: true, maxCode: 0x7f}
	fmtE5M2     = minifloat{exp: 5, mant: 2, bias: 15, ieee: true, maxCode: 0x7b}
	fmtE5M2FNUZ = minifloat{exp: 5, mant: 2, bias: 16, uz: true, maxCode: 0x7f}
	fmtE2M1     = minifloat{exp: 2, mant: 1, bias: 1, maxCode: 0x7}
)

func minifloatOf(dt DataType) (minifloat, bool) {
	switch dt {
	case onnx.TensorProto_FLOAT8E4M3FN:
		return fmtE4M3FN, true
	case onnx.TensorProto_FLOAT8E4M3FNUZ:
		return fmtE4M3FNUZ, true
	case onnx.TensorProto_FLOAT8E5M2:
		return fmtE5M2, true
	case onnx.TensorProto_FLOAT8E5M2FNUZ:
		return fmtE5M2FNUZ, true
	case onnx.TensorProto_FLOAT4E2M1:
		return fmtE2M1, true
	}
	return minifloat{}, false
}

func (f minifloat) signBit() uint8 { return 1 << (f.exp + f.mant) }

func (f minifloat) decode(b uint8) float32 {
	sign := b&f.signBit() != 0
	e := int(b>>f.mant) & (1<<f.exp - 1)
	m := int(b) & (1<<f.mant - 1)
	allOnes := e == 1<<f.exp-1
	switch {
	case f.uz && b == f.signBit():
		return float32(math.NaN())
	case f.ieee && allOnes && m == 0:
		if sign {
			return float32(math.Inf(-1))
		}
		return float32(math.Inf(1))
	case f.ieee && allOnes, f.fn && allOnes && m == 1<<f.mant-1:
		return float32(math.NaN())
	}
	var v float64
	if e == 0 {
		v = math.Ldexp(float64(m), 1-f.bias-int(f.mant))
	} else {
		v = math.Ldexp(float64(m|1<<f.mant), e-f.bias-int(f.mant))
	}
	if sign {
		v = -v
	}
	return float32(v)
}

// encode rounds x to the nearest representable value, ties to even.
// Finite values beyond the largest one, and infinities, become ±max when
// saturate is set; otherwise they become ±Inf (E5M2) or NaN.
func (f minifloat) encode(x float32, saturate bool) uint8 {
	sign := uint8(0)
	if math.Signbit(float64(x)) {
		sign = f.signBit()
	}
	nan := f.nanCode(sign)
	if x != x {
		return nan
	}
	a := math.Abs(float64(x))
	overflow := func() uint8 {
		switch {
		case saturate:
			return sign | f.maxCode
		case f.ieee:
			return sign | uint8(1<<f.exp-1)<<f.mant
		}
		return nan
	}
	if math.IsInf(a, 0) {
		return overflow()
	}
	minExp := 1 - f.bias // exponent of the smallest normal
	_, e := math.Frexp(a)
	e-- // a = 1.x · 2^e
	if e < minExp {
		e = minExp
	}
	quantum := math.Ldexp(1, e-int(f.mant))
	v := math.RoundToEven(a/quantum) * quantum
	if v > float64(f.decode(f.maxCode)) {
		return overflow()
	}
	if v == 0 {
		if f.uz {
			return 0
		}
		return sign
	}
	var code uint8
	if _, ve := math.Frexp(v); ve-1 < minExp {
		code = uint8(v / math.Ldexp(1, minExp-int(f.mant)))
	} else {
		ve--
		m := uint8((v/math.Ldexp(1, ve) - 1) * float64(uint(1)<<f.mant))
		code = uint8(ve+f.bias)<<f.mant | m
	}
	return sign | code
}

func (f minifloat) nanCode(sign uint8) uint8 {
	switch {
	case f.uz:
		return 0x80
	case f.ieee, f.fn:
		return sign | (1<<(f.exp+f.mant) - 1)
	}
	// FLOAT4E2M1 has no NaN; ONNX maps it to the largest positive value.
	return f.maxCode
}

// float8Decoder returns the decoder for an 8-bit float type, or nil.
func float8Decoder(dt DataType) func(byte) float32 {
	if dt == onnx.TensorProto_FLOAT8E8M0 {
		return Float8E8M0ToFloat32
	}
	if f, ok := minifloatOf(dt); ok && Bits(dt) == 8 {
		return f.decode
	}
	return nil
}

// Float8ToFloat32 converts one element of an 8-bit float type (or a
// FLOAT4E2M1 nibble in the low four bits) to float32.
func Float8ToFloat32(dt DataType, b byte) (float32, error) {
	if dt == onnx.TensorProto_FLOAT8E8M0 {
		return Float8E8M0ToFloat32(b), nil
	}
	f, ok := minifloatOf(dt)
	if !ok {
		return 0, fmt.Errorf("%v is not an 8- or 4-bit float type", dt)
	}
	return f.decode(b & (1<<(f.exp+f.mant+1) - 1)), nil
}

// Float32ToFloat8 rounds v to dt (a FLOAT8 type other than E8M0, or
// FLOAT4E2M1 returned in the low four bits), to nearest even. With
// saturate (the ONNX default) out-of-range values and infinities become
// the largest finite value of their sign; without it they become ±Inf in
// E5M2 and NaN in the formats without infinities. FLOAT4E2M1 always
// saturates and maps NaN to +6, as ONNX does.
func Float32ToFloat8(dt DataType, v float32, saturate bool) (byte, error) {
	f, ok := minifloatOf(dt)
	if !ok {
		return 0, fmt.Errorf("cannot encode float32 as %v", dt)
	}
	if dt == onnx.TensorProto_FLOAT4E2M1 {
		saturate = true
	}
	return f.encode(v, saturate), nil
}

// Float8E8M0ToFloat32 converts FLOAT8E8M0 (an unsigned power of two,
// 2^(b−127)) to float32; 0xFF is NaN.
func Float8E8M0ToFloat32(b byte) float32 {
	if b == 0xff {
		return float32(math.NaN())
	}
	return float32(math.Ldexp(1, int(b)-127))
}

// E8M0Rounding selects how Float32ToFloat8E8M0 rounds a value that is not
// a power of two (the Cast round_mode attribute).
type E8M0Rounding int

// Rounding modes for FLOAT8E8M0.
const (
	E8M0RoundUp      E8M0Rounding = iota // ONNX's default
	E8M0RoundDown                        // truncate the mantissa
	E8M0RoundNearest                     // by the mantissa's first bit
)

// Float32ToFloat8E8M0 encodes |v|'s power of two. NaN and ±Inf become
// 0xFF; with saturate, rounding never passes 2^127 (0xFE). Zero and
// float32 subnormals give 0x00 (2^−127), as onnx's reference does.
func Float32ToFloat8E8M0(v float32, saturate bool, mode E8M0Rounding) byte {
	bits := math.Float32bits(v)
	exp := (bits >> 23) & 0xff
	if exp == 0xff {
		return 0xff
	}
	up := false
	switch mode {
	case E8M0RoundUp:
		up = exp > 0 && bits&0x7fffff != 0
	case E8M0RoundNearest:
		// Mantissa ≥ 0.5 rounds up (ties up), as onnx's reference does.
		guard := bits&0x400000 != 0
		rest := bits&0x3fffff != 0
		up = guard && (rest || exp > 0)
	}
	if up && !(saturate && exp == 0xfe) {
		exp++
	}
	return byte(exp)
}

// EncodeFloat8 converts vals to raw bytes of dt (a FLOAT8 type or
// FLOAT4E2M1, packed two to a byte, low nibble first), rounding as
// Float32ToFloat8 does; E8M0 rounds up.
func EncodeFloat8(dt DataType, vals []float32, saturate bool) ([]byte, error) {
	if dt == onnx.TensorProto_FLOAT8E8M0 {
		out := make([]byte, len(vals))
		for i, v := range vals {
			out[i] = Float32ToFloat8E8M0(v, saturate, E8M0RoundUp)
		}
		return out, nil
	}
	f, ok := minifloatOf(dt)
	if !ok {
		return nil, fmt.Errorf("cannot encode float32 values as %v", dt)
	}
	if dt == onnx.TensorProto_FLOAT4E2M1 {
		out := make([]byte, (len(vals)+1)/2)
		for i, v := range vals {
			SetNibble(out, i, int8(f.encode(v, true)))
		}
		return out, nil
	}
	out := make([]byte, len(vals))
	for i, v := range vals {
		out[i] = f.encode(v, saturate)
	}
	return out, nil
}

// decodeFloat4 unpacks n FLOAT4E2M1 elements, low nibble first.
func decodeFloat4(raw []byte, out []float32) {
	for i := range out {
		out[i] = fmtE2M1.decode(uint8(Nibble(raw, i, false)))
	}
}
