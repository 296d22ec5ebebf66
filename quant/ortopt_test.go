package quant

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
)

// optimizedByORT returns the graph onnxruntime runs for m after all its
// optimisations on CPU (session option optimized_model_filepath).
func optimizedByORT(t testing.TB, m *graph.Model) *onnx.ModelProto {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	out := filepath.Join(t.TempDir(), "optimized.onnx")
	if err := so.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if err := so.SetGraphOptimizationLevel(ortgo.GraphOptimizationLevelEnableAll); err != nil {
		t.Fatal(err)
	}
	if err := so.SetOptimizedModelFilePath(out); err != nil {
		t.Fatal(err)
	}
	var ins, outs []string
	for _, v := range m.Graph.Inputs {
		ins = append(ins, v.Name)
	}
	for _, v := range m.Graph.Outputs {
		outs = append(outs, v.Name)
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(data, ins, outs, so)
	if err != nil {
		t.Fatal(err)
	}
	s.Destroy()
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var mp onnx.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	return &mp
}

// opCounts counts the node types of a graph ("domain:op" outside the
// default domain).
func opCounts(mp *onnx.ModelProto) map[string]int {
	c := map[string]int{}
	for _, n := range mp.GetGraph().GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + ":" + op
		}
		c[op]++
	}
	return c
}

func sortedOps(c map[string]int) []string {
	var out []string
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestQDQRunsOnIntegerKernels checks the graphs onnxruntime makes of
// pare's QDQ models: every quantized Conv becomes QLinearConv and every
// quantized MatMul an integer MatMul (QLinearMatMul when its output is
// read quantized, else MatMulIntegerToFloat), with no float Conv or
// MatMul left reading a DequantizeLinear and no DequantizeLinear left in
// the transformer (its Q→DQ pairs all fold into the kernels).
func TestQDQRunsOnIntegerKernels(t *testing.T) {
	for _, name := range []string{"fmnist_resnet_bn_op17", "gpt_nano_op17"} {
		t.Run(name, func(t *testing.T) {
			f := namedFixture(t, name)
			m, in := loadFixture(t, f)
			d := Dataset{Inputs: in}
			rep, err := Quantize(t.Context(), m, Options{Format: FormatQDQ, Calib: &d})
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]int{}
			for _, l := range rep.Layers {
				ops[l.Op]++
			}
			opt := optimizedByORT(t, m)
			got := opCounts(opt)
			t.Logf("quantized %v; onnxruntime runs %v", ops, got)
			if got["QLinearConv"]+got["com.microsoft:QLinearConv"] != ops["Conv"] {
				t.Errorf("%d QLinearConv for %d quantized Convs", got["QLinearConv"]+got["com.microsoft:QLinearConv"], ops["Conv"])
			}
			integerMatMuls := got["QLinearMatMul"] + got["com.microsoft:MatMulIntegerToFloat"]
			if integerMatMuls != ops["MatMul"] {
				t.Errorf("%d integer MatMuls for %d quantized MatMuls", integerMatMuls, ops["MatMul"])
			}
			produced := map[string]string{}
			for _, n := range opt.GetGraph().GetNode() {
				for _, o := range n.GetOutput() {
					produced[o] = n.GetOpType()
				}
			}
			for _, n := range opt.GetGraph().GetNode() {
				if op := n.GetOpType(); (op == "Conv" || op == "MatMul" || op == "Gemm") && len(n.GetInput()) > 1 && produced[n.GetInput()[1]] == "DequantizeLinear" {
					t.Errorf("float %s %s reads a dequantized weight", op, n.GetName())
				}
			}
			if got["BatchNormalization"] > 0 {
				t.Errorf("%d BatchNormalization left unfolded", got["BatchNormalization"])
			}
			if f.Name == "gpt_nano_op17" && got["DequantizeLinear"] > 0 {
				t.Errorf("%d DequantizeLinear left in the transformer", got["DequantizeLinear"])
			}
		})
	}
}

// Sigmoid after a quantized layer gets its own grid, so onnxruntime runs
// it and the Mul it feeds (SiLU, as in EfficientNet) on integers instead
// of dequantizing a feature map for a float Sigmoid and Mul.
func TestQDQSigmoidRunsOnIntegerKernels(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4, 8, 8)
	rng := rand.New(rand.NewPCG(3, 4))
	weight := func(name string, o, i int64) string {
		w := make([]float32, o*i*9)
		for k := range w {
			w[k] = float32(rng.NormFloat64()) * 0.3
		}
		return b.Init(name, []int64{o, i, 3, 3}, w)
	}
	pads := build.Ints("pads", 1, 1, 1, 1)
	c1 := b.Node("Conv", []string{x, weight("w1", 8, 4)}, pads)
	silu := b.Node("Mul", []string{c1, b.Node("Sigmoid", []string{c1})})
	c2 := b.Node("Conv", []string{silu, weight("w2", 4, 8)}, pads)
	b.Output(c2, onnx.TensorProto_FLOAT, 1, 4, 8, 8)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Quantize(t.Context(), m, Options{Format: FormatQDQ, CalibSamples: 8}); err != nil {
		t.Fatal(err)
	}
	got := opCounts(optimizedByORT(t, m))
	t.Logf("onnxruntime runs %v", got)
	if got["Sigmoid"] != 0 || got["com.microsoft:QLinearSigmoid"] != 1 {
		t.Errorf("%d float Sigmoid and %d QLinearSigmoid, want 0 and 1", got["Sigmoid"], got["com.microsoft:QLinearSigmoid"])
	}
	if got["Mul"] != 0 || got["com.microsoft:QLinearMul"] != 1 {
		t.Errorf("%d float Mul and %d QLinearMul, want 0 and 1", got["Mul"], got["com.microsoft:QLinearMul"])
	}
}
