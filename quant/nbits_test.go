package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// layoutTol bounds the difference between onnxruntime's MatMulNBits and
// the Go product of the dequantised weight, relative to the sum of
// absolute products: both sum the same float32 products in different
// orders (QUANT.md asks for 1e-4).
const layoutTol = 1e-4

// matmulModel is x[M,K] → MatMul(W[K,N]) → y.
func matmulModel(t testing.TB, rng *rand.Rand, m, k, n int64) *graph.Model {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, m, k)
	w := randMatrix(rng, int(k), int(n))
	y := b.Node("MatMul", []string{x, b.Init("W", []int64{k, n}, w.Data)})
	b.Output(y, onnx.TensorProto_FLOAT, m, n)
	mod, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestMatMulNBitsMatchesDequantizedProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, s := range allSchemes {
		for _, block := range []int{16, 32, 64, 128, 256} {
			for _, k := range []int64{int64(block), 100, 2*int64(block) + 3} {
				t.Run(fmt.Sprintf("%v/block%d/K%d", s, block, k), func(t *testing.T) {
					const m, n = 5, 24
					mod := matmulModel(t, rng, m, k, n)
					l := FindLayers(mod, nil)[0]
					w, err := l.Matrix(mod)
					if err != nil {
						t.Fatal(err)
					}
					q, err := RTN(w, s, PerBlock(block))
					if err != nil {
						t.Fatal(err)
					}
					e := newEditor(mod)
					if err := e.emitNBits(l, q, 0); err != nil {
						t.Fatal(err)
					}
					if err := e.apply(); err != nil {
						t.Fatal(err)
					}
					if mod.Graph.Nodes[0].Op() != "MatMulNBits" || mod.OpsetVersion(msDomain) != 1 {
						t.Fatalf("graph has %v, com.microsoft opset %d", mod.Graph.Nodes[0], mod.OpsetVersion(msDomain))
					}
					x := randDense(rng, m, k)
					got := float32s(t, runORT(t, mod, map[string]tensor.Dense{"x": x})[0])
					nb, _ := PackNBits(q)
					want, mag := matmulRef(float32s(t, x), m, int(k), nb.Dequantize())
					for i := range want {
						if d := math.Abs(float64(got[i]) - want[i]); d > layoutTol*mag[i]+1e-6 {
							t.Fatalf("element %d: onnxruntime %v, Go %v (|Δ| %g, scale %g)", i, got[i], want[i], d, mag[i])
						}
					}
				})
			}
		}
	}
}

func TestGemmToMatMulKeepsOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, transB := range []int64{0, 1} {
		for _, bias := range []bool{false, true} {
			b := build.New(13)
			x := b.Input("x", onnx.TensorProto_FLOAT, 3, 6)
			dims := []int64{6, 4}
			if transB == 1 {
				dims = []int64{4, 6}
			}
			ins := []string{x, b.Init("B", dims, randMatrix(rng, 6, 4).Data)}
			if bias {
				ins = append(ins, b.Init("C", []int64{4}, randMatrix(rng, 1, 4).Data))
			}
			y := b.Node("Gemm", ins, build.Int("transB", transB), build.Float("alpha", 0.7), build.Float("beta", 1.3))
			b.Output(y, onnx.TensorProto_FLOAT, 3, 4)
			mod, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]tensor.Dense{"x": randDense(rng, 3, 6)}
			want := float32s(t, runORT(t, mod, in)[0])
			n, err := GemmToMatMul(mod)
			if err != nil || n != 1 {
				t.Fatalf("GemmToMatMul = %d, %v", n, err)
			}
			for _, node := range mod.Graph.Nodes {
				if node.Op() == "Gemm" {
					t.Fatal("Gemm left in the graph")
				}
			}
			got := float32s(t, runORT(t, mod, in)[0])
			if e := relL2(got, want); e > 1e-6 {
				t.Errorf("transB=%d bias=%v: relative error %g", transB, bias, e)
			}
		}
	}
}
