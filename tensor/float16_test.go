package tensor

import (
	"math"
	"testing"
)

func TestFloat16Known(t *testing.T) {
	tests := []struct {
		bits uint16
		f    float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.33325195},
		{0x7bff, 65504},
		{0x0400, 6.1035156e-05}, // smallest normal
		{0x0001, 5.9604645e-08}, // smallest subnormal
		{0x03ff, 6.0975552e-05}, // largest subnormal
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, tt := range tests {
		if got := Float16ToFloat32(tt.bits); got != tt.f {
			t.Errorf("Float16ToFloat32(%#04x) = %v, want %v", tt.bits, got, tt.f)
		}
		if got := Float32ToFloat16(tt.f); got != tt.bits {
			t.Errorf("Float32ToFloat16(%v) = %#04x, want %#04x", tt.f, got, tt.bits)
		}
	}
	if got := Float16ToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("NaN decodes to %v", got)
	}
	if got := Float32ToFloat16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("NaN encodes to %#04x", got)
	}
	if got := Float32ToFloat16(-0.0 * 1); Float16ToFloat32(got) != 0 {
		t.Errorf("zero encodes to %#04x", got)
	}
	negZero := float32(math.Copysign(0, -1))
	if got := Float32ToFloat16(negZero); got != 0x8000 {
		t.Errorf("-0 encodes to %#04x", got)
	}
	if got := Float32ToFloat16(65520); got != 0x7c00 {
		t.Errorf("65520 (rounds up past max) encodes to %#04x, want +Inf", got)
	}
	if got := Float32ToFloat16(1e-9); got != 0 {
		t.Errorf("1e-9 encodes to %#04x, want 0", got)
	}
	// 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1).
	if got := Float32ToFloat16(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie rounds to %#04x, want 0x3c00", got)
	}
}

func TestFloat16RoundTripAll(t *testing.T) {
	for b := range 1 << 16 {
		h := uint16(b)
		f := Float16ToFloat32(h)
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := Float32ToFloat16(f); got != h {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, got)
		}
	}
}

func TestBFloat16(t *testing.T) {
	if got := BFloat16ToFloat32(0x3f80); got != 1 {
		t.Errorf("bf16 0x3f80 = %v", got)
	}
	if got := Float32ToBFloat16(1); got != 0x3f80 {
		t.Errorf("bf16(1) = %#04x", got)
	}
	if got := Float32ToBFloat16(float32(math.NaN())); !math.IsNaN(float64(BFloat16ToFloat32(got))) {
		t.Errorf("bf16(NaN) = %#04x", got)
	}
	if got := Float32ToBFloat16(math.Float32frombits(0x3f808000)); got != 0x3f80 {
		t.Errorf("bf16 tie rounds to %#04x, want even 0x3f80", got)
	}
	if got := Float32ToBFloat16(math.Float32frombits(0x3f818000)); got != 0x3f82 {
		t.Errorf("bf16 tie rounds to %#04x, want even 0x3f82", got)
	}
}
