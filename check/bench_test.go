package check

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// BenchmarkAccumulate measures metric accumulation on logits-shaped
// outputs ([rows, 1000]) of three sizes.
func BenchmarkAccumulate(b *testing.B) {
	for _, rows := range []int{1, 32, 1024} {
		rng := rand.New(rand.NewPCG(3, 4))
		r, c := make([]float32, rows*1000), make([]float32, rows*1000)
		for i := range r {
			r[i] = float32(rng.NormFloat64())
			c[i] = r[i] + float32(rng.NormFloat64())*1e-3
		}
		ref, _ := tensor.New([]int64{int64(rows), 1000}, r)
		cand, _ := tensor.New([]int64{int64(rows), 1000}, c)
		b.Run(fmt.Sprintf("rows%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(8 * len(r)))
			for b.Loop() {
				a := newAccumulator(&AllClose{ATol: 1e-4, RTol: 1e-3})
				if _, _, err := a.add(ref, cand); err != nil {
					b.Fatal(err)
				}
				_ = a.metrics()
			}
		})
	}
}
