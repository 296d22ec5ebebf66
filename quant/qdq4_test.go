package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

func TestQDQ4MatchesDequantizedProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	// With all optimisations onnxruntime fuses DequantizeLinear→MatMul into
	// MatMulNBits at accuracy level 4 (int8 activations), which is no
	// longer the plain product; basic optimisations keep the graph as written.
	level := ort.OptBasic
	for _, s := range []Scheme{{4, true}, {4, false}} {
		for _, block := range []int{16, 32, 64, 128} {
			for _, k := range []int64{int64(block), 2*int64(block) + 5} {
				t.Run(fmt.Sprintf("%v/block%d/K%d", s, block, k), func(t *testing.T) {
					const m, n = 4, 12
					mod := matmulModel(t, rng, m, k, n)
					l := FindLayers(mod, nil)[0]
					w, _ := l.Matrix(mod)
					q, err := RTN(w, s, PerBlock(block))
					if err != nil {
						t.Fatal(err)
					}
					if err := upgradeOpset(mod, qdq4Opset); err != nil {
						t.Fatal(err)
					}
					l = FindLayers(mod, nil)[0]
					e := newEditor(mod)
					if err := e.emitQDQ4(l, q); err != nil {
						t.Fatal(err)
					}
					if err := e.apply(); err != nil {
						t.Fatal(err)
					}
					x := randDense(rng, m, k)
					got := float32s(t, runORTWith(t, mod, map[string]tensor.Dense{"x": x}, ort.Options{OptLevel: level})[0])
					want, mag := matmulRef(float32s(t, x), m, int(k), q.Dequantize())
					for i := range want {
						if d := math.Abs(float64(got[i]) - want[i]); d > layoutTol*mag[i]+1e-6 {
							t.Fatalf("element %d: onnxruntime %v, Go %v", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}

func TestUpgradeOpsetKeepsReductions(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 2, 3, 5)
	m1 := b.Node("ReduceMean", []string{x}, build.Ints("axes", -1), build.Int("keepdims", 1))
	m2 := b.Node("ReduceMax", []string{x}, build.Ints("axes", 0, 2), build.Int("keepdims", 0))
	m3 := b.Node("ReduceL2", []string{x})
	b.Output(m1, onnx.TensorProto_FLOAT, 2, 3, 1)
	b.Output(m2, onnx.TensorProto_FLOAT, 3)
	b.Output(m3, onnx.TensorProto_FLOAT, 1, 1, 1)
	mod, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]tensor.Dense{"x": randDense(rng, 2, 3, 5)}
	want := runORT(t, mod, in)
	if err := upgradeOpset(mod, 21); err != nil {
		t.Fatal(err)
	}
	if v := mod.OpsetVersion(""); v != 21 {
		t.Fatalf("opset %d after upgrade", v)
	}
	got := runORT(t, mod, in)
	for i := range want {
		if e := relL2(float32s(t, got[i]), float32s(t, want[i])); e != 0 {
			t.Errorf("output %d differs after upgrade (relative error %g)", i, e)
		}
	}
}

func TestUpgradeOpsetRefusesChangedOps(t *testing.T) {
	b := build.New(18)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4, 2)
	y := b.Node("GroupNormalization", []string{x, b.Init("s", []int64{2}, []float32{1, 1}), b.Init("b", []int64{2}, []float32{0, 0})}, build.Int("num_groups", 2))
	b.Output(y, onnx.TensorProto_FLOAT, 1, 4, 2)
	mod, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := upgradeOpset(mod, 21); err == nil {
		t.Error("upgraded a model with GroupNormalization")
	}
}

// TestQDQ4ConvMatchesDequantizedWeights quantizes the trained CNN's Convs
// to 4 bits per output channel (qdq4 with QuantizeConv) and checks that
// onnxruntime computes what the float model computes with the
// dequantized weights put in place of the originals.
func TestQDQ4ConvMatchesDequantizedWeights(t *testing.T) {
	f := namedFixture(t, "fmnist_resnet_op13")
	m, in := loadFixture(t, f)
	ref, _ := loadFixture(t, f)
	rep, err := Quantize(t.Context(), m, Options{Format: FormatQDQ4, Block: 32, QuantizeConv: true})
	if err != nil {
		t.Fatal(err)
	}
	convs := 0
	for _, lr := range rep.Layers {
		if lr.Op == "Conv" {
			convs++
		}
	}
	if convs == 0 {
		t.Fatalf("no Conv quantized: %+v", rep.Skipped)
	}
	// The reference: the same RTN grids, dequantized, in the float model.
	o := Options{Format: FormatQDQ4, Block: 32, QuantizeConv: true}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if _, err := GemmToMatMul(ref); err != nil {
		t.Fatal(err)
	}
	for _, l := range FindLayers(ref, nil) {
		w, err := l.Matrix(ref)
		if err != nil {
			t.Fatal(err)
		}
		s, g := o.layerScheme(l)
		q, err := RTN(w, s, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SetMatrix(ref, q.Dequantize()); err != nil {
			t.Fatal(err)
		}
	}
	want := runORTWith(t, ref, in, ort.Options{OptLevel: ort.OptBasic})
	got := runORTWith(t, m, in, ort.Options{OptLevel: ort.OptBasic})
	if e := relL2(float32s(t, got[0]), float32s(t, want[0])); e > 1e-5 {
		t.Errorf("relative L2 %.2e between qdq4 Convs and the float model with dequantized weights", e)
	} else {
		t.Logf("%d Convs in 4 bits; relative L2 to the dequantized float model %.2e", convs, e)
	}
}
