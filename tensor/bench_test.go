package tensor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// Size tiers: elements of float32.
var benchSizes = []int{1 << 10, 1 << 16, 1 << 22}

func randomDense(n int) Dense {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	d, _ := New([]int64{int64(n / 64), 64}, v)
	return d
}

func BenchmarkWriteNpy(b *testing.B) {
	for _, n := range benchSizes {
		d := randomDense(n)
		b.Run(fmt.Sprintf("f32x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * n))
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := WriteNpy(&buf, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadNpyFile(b *testing.B) {
	for _, n := range benchSizes {
		path := filepath.Join(b.TempDir(), "x.npy")
		if err := WriteNpyFile(path, randomDense(n)); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("f32x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * n))
			for b.Loop() {
				if _, err := ReadNpyFile(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNpyBatches(b *testing.B) {
	n := benchSizes[len(benchSizes)-1]
	path := filepath.Join(b.TempDir(), "x.npy")
	if err := WriteNpyFile(path, randomDense(n)); err != nil {
		b.Fatal(err)
	}
	f, err := OpenNpy(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		for _, err := range f.Batches(256) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
