package graph_test

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

var (
	inf    = float32(math.Inf(1))
	nan    = float32(math.NaN())
	negZer = float32(math.Copysign(0, -1))
)

func p2(e int) float32 { return float32(math.Ldexp(1, e)) }

// sameFloat treats all NaNs as equal and tells −0 from +0.
func sameFloat(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return a == b && math.Signbit(float64(a)) == math.Signbit(float64(b))
}

func TestFloat8Decode(t *testing.T) {
	type tc struct {
		bits byte
		want float32
	}
	cases := map[graph.DataType][]tc{
		onnx.TensorProto_FLOAT8E4M3FN: {
			{0x00, 0}, {0x80, negZer}, {0x38, 1}, {0x7e, 448}, {0xfe, -448},
			{0x7f, nan}, {0xff, nan}, {0x01, p2(-9)}, {0x07, 7 * p2(-9)}, {0x08, p2(-6)},
			{0x77, 240}, {0x79, 288},
		},
		onnx.TensorProto_FLOAT8E4M3FNUZ: {
			{0x00, 0}, {0x80, nan}, {0x40, 1}, {0x7f, 240}, {0xff, -240},
			{0x01, p2(-10)}, {0x08, p2(-7)},
		},
		onnx.TensorProto_FLOAT8E5M2: {
			{0x00, 0}, {0x80, negZer}, {0x3c, 1}, {0x7b, 57344}, {0xfb, -57344},
			{0x7c, inf}, {0xfc, -inf}, {0x7d, nan}, {0x7f, nan}, {0xfe, nan},
			{0x01, p2(-16)}, {0x04, p2(-14)},
		},
		onnx.TensorProto_FLOAT8E5M2FNUZ: {
			{0x00, 0}, {0x80, nan}, {0x40, 1}, {0x7f, 57344}, {0xff, -57344},
			{0x7c, 32768}, {0x01, p2(-17)},
		},
		onnx.TensorProto_FLOAT8E8M0: {
			{0x7f, 1}, {0x80, 2}, {0x00, p2(-127)}, {0xfe, p2(127)}, {0xff, nan},
		},
		onnx.TensorProto_FLOAT4E2M1: {
			{0x0, 0}, {0x1, 0.5}, {0x2, 1}, {0x3, 1.5}, {0x4, 2}, {0x5, 3}, {0x6, 4},
			{0x7, 6}, {0x8, negZer}, {0xf, -6}, {0x9, -0.5},
		},
	}
	for dt, tcs := range cases {
		for _, c := range tcs {
			got, err := graph.Float8ToFloat32(dt, c.bits)
			if err != nil {
				t.Fatal(err)
			}
			if !sameFloat(got, c.want) {
				t.Errorf("%v 0x%02x = %v, want %v", dt, c.bits, got, c.want)
			}
			if dt == onnx.TensorProto_FLOAT4E2M1 {
				continue
			}
			vals, err := graph.DecodeFloat32(dt, []byte{c.bits}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !sameFloat(vals[0], c.want) {
				t.Errorf("DecodeFloat32(%v, 0x%02x) = %v, want %v", dt, c.bits, vals[0], c.want)
			}
		}
	}
}

func TestFloat8Encode(t *testing.T) {
	type tc struct {
		in       float32
		saturate bool
		want     byte
	}
	cases := map[graph.DataType][]tc{
		onnx.TensorProto_FLOAT8E4M3FN: {
			{1, true, 0x38},
			{1.0625, true, 0x38}, // tie between 1 and 1.125: even mantissa
			{1.1875, true, 0x3a}, // tie between 1.125 and 1.25: even mantissa
			{464, true, 0x7e},    // tie between 448 and (absent) 480
			{500, true, 0x7e}, {500, false, 0x7f},
			{-500, true, 0xfe}, {-500, false, 0xff},
			{inf, true, 0x7e}, {-inf, true, 0xfe}, {inf, false, 0x7f},
			{nan, true, 0x7f}, {negZer, true, 0x80},
			{p2(-10), true, 0x00},     // half the smallest subnormal: even is 0
			{3 * p2(-10), true, 0x02}, // tie between subnormals 1 and 2
			{-p2(-12), true, 0x80},    // underflows to −0
			{p2(-6), true, 0x08},
		},
		onnx.TensorProto_FLOAT8E4M3FNUZ: {
			{1, true, 0x40}, {240, true, 0x7f}, {1000, true, 0x7f}, {1000, false, 0x80},
			{inf, true, 0x7f}, {-inf, true, 0xff}, {inf, false, 0x80},
			{nan, true, 0x80}, {negZer, true, 0x00}, {-p2(-14), true, 0x00},
		},
		onnx.TensorProto_FLOAT8E5M2: {
			{1, true, 0x3c}, {57344, true, 0x7b}, {1e6, true, 0x7b}, {1e6, false, 0x7c},
			{-1e6, false, 0xfc}, {61440, true, 0x7b}, {61440, false, 0x7c},
			{inf, false, 0x7c}, {-inf, false, 0xfc}, {inf, true, 0x7b},
			{nan, true, 0x7f}, {negZer, true, 0x80}, {p2(-16), true, 0x01},
		},
		onnx.TensorProto_FLOAT8E5M2FNUZ: {
			{1, true, 0x40}, {1e6, true, 0x7f}, {-1e6, true, 0xff}, {1e6, false, 0x80},
			{nan, true, 0x80}, {negZer, false, 0x00}, {p2(-17), true, 0x01},
		},
		onnx.TensorProto_FLOAT4E2M1: {
			{0.25, true, 0x0}, {0.26, true, 0x1}, {0.75, true, 0x2}, {1.25, true, 0x2},
			{1.75, true, 0x4}, {2.5, true, 0x4}, {3.5, true, 0x6}, {5, true, 0x6},
			{5.1, true, 0x7}, {100, false, 0x7}, {-100, true, 0xf}, {inf, true, 0x7},
			{-inf, true, 0xf}, {nan, true, 0x7}, {negZer, true, 0x8}, {-0.5, true, 0x9},
		},
	}
	for dt, tcs := range cases {
		for _, c := range tcs {
			got, err := graph.Float32ToFloat8(dt, c.in, c.saturate)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%v(%v, saturate=%v) = 0x%02x, want 0x%02x", dt, c.in, c.saturate, got, c.want)
			}
		}
	}
}

// Every non-NaN pattern decodes to a value that encodes back to itself.
func TestFloat8RoundTrip(t *testing.T) {
	for _, dt := range []graph.DataType{onnx.TensorProto_FLOAT8E4M3FN, onnx.TensorProto_FLOAT8E4M3FNUZ,
		onnx.TensorProto_FLOAT8E5M2, onnx.TensorProto_FLOAT8E5M2FNUZ, onnx.TensorProto_FLOAT4E2M1} {
		n := 256
		if dt == onnx.TensorProto_FLOAT4E2M1 {
			n = 16
		}
		for b := range n {
			v, _ := graph.Float8ToFloat32(dt, byte(b))
			if v != v {
				continue
			}
			back, _ := graph.Float32ToFloat8(dt, v, false)
			if back != byte(b) {
				t.Errorf("%v: 0x%02x -> %v -> 0x%02x", dt, b, v, back)
			}
		}
	}
}

func TestFloat8E8M0Encode(t *testing.T) {
	maxF := math.MaxFloat32
	cases := []struct {
		in       float32
		saturate bool
		mode     graph.E8M0Rounding
		want     byte
	}{
		{1, true, graph.E8M0RoundUp, 0x7f},
		{1.5, true, graph.E8M0RoundUp, 0x80},
		{3, true, graph.E8M0RoundUp, 0x81},
		{3, true, graph.E8M0RoundDown, 0x80},
		{-4, true, graph.E8M0RoundDown, 0x81}, // the sign is dropped
		{1.25, true, graph.E8M0RoundNearest, 0x7f},
		{1.5, true, graph.E8M0RoundNearest, 0x80},
		{1.75, true, graph.E8M0RoundNearest, 0x80},
		{0, true, graph.E8M0RoundUp, 0x00},
		{nan, true, graph.E8M0RoundUp, 0xff},
		{inf, true, graph.E8M0RoundUp, 0xff},
		{float32(maxF), true, graph.E8M0RoundUp, 0xfe},
		{float32(maxF), false, graph.E8M0RoundUp, 0xff},
	}
	for _, c := range cases {
		if got := graph.Float32ToFloat8E8M0(c.in, c.saturate, c.mode); got != c.want {
			t.Errorf("E8M0(%v, %v, %v) = 0x%02x, want 0x%02x", c.in, c.saturate, c.mode, got, c.want)
		}
	}
}

func TestFloat4Packed(t *testing.T) {
	raw, err := graph.EncodeFloat8(onnx.TensorProto_FLOAT4E2M1, []float32{0.5, 1, 6}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0] != 0x21 || raw[1] != 0x07 {
		t.Fatalf("packed = % x, want 21 07", raw)
	}
	vals, err := graph.DecodeFloat32(onnx.TensorProto_FLOAT4E2M1, raw, 3)
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] != 0.5 || vals[1] != 1 || vals[2] != 6 {
		t.Fatalf("decoded %v", vals)
	}
	if _, err := graph.DecodeFloat32(onnx.TensorProto_FLOAT4E2M1, raw, 5); err == nil {
		t.Fatal("5 elements from 2 bytes: no error")
	}
}

func TestEncodeFloat8Types(t *testing.T) {
	raw, err := graph.EncodeFloat8(onnx.TensorProto_FLOAT8E5M2, []float32{1, -2, 1e6}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x3c, 0xc0, 0x7c}; string(raw) != string(want) {
		t.Fatalf("E5M2 bytes % x, want % x", raw, want)
	}
	if _, err := graph.EncodeFloat8(onnx.TensorProto_INT8, []float32{1}, true); err == nil {
		t.Fatal("INT8 accepted as a float8 type")
	}
	if _, err := graph.Float8ToFloat32(onnx.TensorProto_FLOAT, 0); err == nil {
		t.Fatal("FLOAT accepted as a float8 type")
	}
}
