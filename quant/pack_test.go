package quant

import (
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/graph"
)

func TestPackNBitsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range allSchemes {
		for _, block := range []int{16, 32, 64, 128, 256} {
			n, k := 1+rng.IntN(6), 1+rng.IntN(3*block)
			w := randMatrix(rng, n, k)
			q, err := RTN(w, s, PerBlock(block))
			if err != nil {
				t.Fatal(err)
			}
			nb, err := PackNBits(q)
			if err != nil {
				t.Fatalf("%v block %d: %v", s, block, err)
			}
			blocks := (k + block - 1) / block
			if len(nb.B) != n*blocks*block*s.Bits/8 || len(nb.Scales) != n*blocks {
				t.Fatalf("%v block %d K %d: B %d bytes, %d scales", s, block, k, len(nb.B), len(nb.Scales))
			}
			if (nb.Zeros == nil) != (s.Symmetric && s.Bits == 4) {
				t.Fatalf("%v: zero points present = %v", s, nb.Zeros != nil)
			}
			if nb.Zeros != nil && len(nb.Zeros) != n*((blocks*s.Bits+7)/8) {
				t.Fatalf("%v: %d zero point bytes", s, len(nb.Zeros))
			}
			want, got := q.Dequantize(), nb.Dequantize()
			for i := range want.Data {
				if want.Data[i] != got.Data[i] {
					t.Fatalf("%v block %d K %d: element %d reads %v from the packing, %v from the codes", s, block, k, i, got.Data[i], want.Data[i])
				}
			}
		}
	}
}

func TestPackNBitsLayout(t *testing.T) {
	// Two rows of K=20 with block 16: codes chosen so each position is
	// recognisable; the second block is padded with zero codes.
	q, _ := newQuantized(Scheme{4, false}, PerBlock(16), 2, 20)
	for i := range q.Q {
		q.Q[i] = int32(i % 16)
	}
	for i := range q.Grids {
		q.Grids[i] = Grid{Scale: float32(i + 1), Zero: int32(i + 3)}
	}
	nb, err := PackNBits(q)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0, block 0, byte 0 holds k=0 (low) and k=1 (high).
	if nb.B[0] != 0x10 {
		t.Errorf("B[0,0,0] = %#x, want 0x10", nb.B[0])
	}
	// Row 0, block 1 starts at byte 8: k=16,17 → codes 0,1.
	if nb.B[8] != 0x10 || nb.B[9] != 0x32 {
		t.Errorf("B[0,1,0:2] = %#x %#x, want 0x10 0x32", nb.B[8], nb.B[9])
	}
	for i := 10; i < 16; i++ {
		if nb.B[i] != 0 {
			t.Errorf("padding byte %d = %#x, want 0", i, nb.B[i])
		}
	}
	// Row 1 starts at byte 16 with k=0 → element 20 → code 4, k=1 → 5.
	if nb.B[16] != 0x54 {
		t.Errorf("B[1,0,0] = %#x, want 0x54", nb.B[16])
	}
	// Zero points: one byte per row, block 0 low nibble.
	if len(nb.Zeros) != 2 || nb.Zeros[0] != 0x43 || nb.Zeros[1] != 0x65 {
		t.Errorf("zero points = %#x, want [0x43 0x65]", nb.Zeros)
	}
	if nb.Scales[0] != 1 || nb.Scales[3] != 4 {
		t.Errorf("scales = %v", nb.Scales)
	}
}

func TestPackNBitsRejectsBadBlocks(t *testing.T) {
	for _, g := range []Granularity{PerChannel(), PerBlock(8), PerBlock(48)} {
		q, _ := newQuantized(Scheme{4, true}, g, 1, 64)
		if _, err := PackNBits(q); err == nil {
			t.Errorf("%v: packed without error", g)
		}
	}
}

func TestInt4TensorRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, signed := range []bool{true, false} {
		codes := make([]int32, 1+rng.IntN(99))
		for i := range codes {
			if signed {
				codes[i] = int32(rng.IntN(16)) - 8
			} else {
				codes[i] = int32(rng.IntN(16))
			}
		}
		tp, err := Int4Tensor("w", []int64{int64(len(codes))}, codes, signed)
		if err != nil {
			t.Fatal(err)
		}
		back, err := graph.Int64s(tp)
		if err != nil {
			t.Fatal(err)
		}
		for i := range codes {
			if back[i] != int64(codes[i]) {
				t.Fatalf("signed=%v element %d = %d, want %d", signed, i, back[i], codes[i])
			}
		}
	}
	if _, err := Int4Tensor("w", []int64{1}, []int32{9}, true); err == nil {
		t.Error("code 9 packed as INT4 without error")
	}
}
