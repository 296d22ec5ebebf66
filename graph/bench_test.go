package graph_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// benchTiers widen the same eight-layer MLP to about 1, 10 and 100 MB of
// float weights (8 × width² × 4 bytes).
var benchTiers = []struct {
	name  string
	width int
}{
	{"1MB", 181},
	{"10MB", 572},
	{"100MB", 1810},
}

// widenedMLP builds x → 8 × (MatMul W_i → Add b_i → Relu) with weights
// drawn from a fixed seed.
func widenedMLP(b testing.TB, width int) *graph.Model {
	b.Helper()
	rng := rand.New(rand.NewPCG(42, uint64(width)))
	bld := build.New(17)
	v := bld.Input("x", onnx.TensorProto_FLOAT, -1, int64(width))
	for layer := range 8 {
		w := make([]float32, width*width)
		for i := range w {
			w[i] = rng.Float32() - 0.5
		}
		bias := make([]float32, width)
		wn := bld.Init(fmt.Sprintf("W%d", layer), []int64{int64(width), int64(width)}, w)
		bn := bld.Init(fmt.Sprintf("b%d", layer), []int64{int64(width)}, bias)
		v = bld.Node("MatMul", []string{v, wn})
		v = bld.Node("Add", []string{v, bn})
		v = bld.Node("Relu", []string{v})
	}
	bld.Output(v, onnx.TensorProto_FLOAT, -1, int64(width))
	m, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkMarshal(b *testing.B) {
	for _, tier := range benchTiers {
		b.Run(tier.name, func(b *testing.B) {
			m := widenedMLP(b, tier.width)
			data, err := m.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, tier := range benchTiers {
		b.Run(tier.name, func(b *testing.B) {
			data, err := widenedMLP(b, tier.width).Marshal()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := graph.Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, external := range []bool{false, true} {
		for _, tier := range benchTiers {
			name := tier.name
			if external {
				name += "/external"
			}
			b.Run(name, func(b *testing.B) {
				p := filepath.Join(b.TempDir(), "m.onnx")
				if err := widenedMLP(b, tier.width).Save(p, graph.SaveOptions{ExternalData: external}); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(fileBytes(b, p, external))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := graph.Load(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkSave(b *testing.B) {
	for _, external := range []bool{false, true} {
		for _, tier := range benchTiers {
			name := tier.name
			if external {
				name += "/external"
			}
			b.Run(name, func(b *testing.B) {
				m := widenedMLP(b, tier.width)
				p := filepath.Join(b.TempDir(), "m.onnx")
				opts := graph.SaveOptions{ExternalData: external}
				if err := m.Save(p, opts); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(fileBytes(b, p, external))
				b.ReportAllocs()
				for b.Loop() {
					if err := m.Save(p, opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// fileBytes is the size of the saved model, with its data file.
func fileBytes(b *testing.B, p string, external bool) int64 {
	b.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	n := fi.Size()
	if external {
		if fi, err = os.Stat(p + ".data"); err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// BenchmarkSaveOver2GiB saves a model with a 2.1 GB weight without asking
// for external data: protobuf cannot encode it inline, so Save must move
// the weight to a data file; the file then loads back. It needs about
// 5 GB of memory and disk, so it runs only when named:
//
//	go test ./graph/ -run '^$' -bench SaveOver2GiB -benchtime 1x
func BenchmarkSaveOver2GiB(b *testing.B) {
	const n = (1<<31 + 100<<20) / 4 // float32 elements, 2.1 GB
	bld := build.New(17)
	x := bld.Input("x", onnx.TensorProto_FLOAT, 1, 1)
	w := bld.InitTensor(graph.NewTensor("W", onnx.TensorProto_FLOAT, []int64{1, n}, make([]byte, 4*n)))
	bld.Output(bld.Node("MatMul", []string{x, w}), onnx.TensorProto_FLOAT, 1, n)
	m, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "big.onnx")
	b.SetBytes(4 * n)
	for b.Loop() {
		if err := m.Save(p, graph.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	if fi.Size() >= 1<<31-1 {
		b.Fatalf("main file has %d bytes", fi.Size())
	}
	back, err := graph.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	if back.External["W"] != "big.onnx.data" || len(back.Graph.Initializer("W").RawData) != 4*n {
		b.Fatalf("weight not stored externally: %v", back.External)
	}
}
