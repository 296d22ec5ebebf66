package grad

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	onnxbuild "github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// TestMaxPoolPadsMatchOnnxruntime: a MaxPool whose windows run past the
// input (ceil_mode, asymmetric pads, auto_pad) pools exactly the
// windows onnxruntime does, on inputs with negative values (where a
// padding of zeros would win a window), and its gradient, through a
// Conv before it, matches finite differences.
func TestMaxPoolPadsMatchOnnxruntime(t *testing.T) {
	poolPadsMatch(t, "MaxPool", map[string][]*onnx.AttributeProto{
		"ceil, asymmetric pads": {onnxbuild.Int("ceil_mode", 1), onnxbuild.Ints("pads", 0, 1, 1, 0)},
		"ceil, no pads":         {onnxbuild.Int("ceil_mode", 1)},
		"symmetric pads":        {onnxbuild.Ints("pads", 1, 1, 1, 1)},
		"same upper":            {onnxbuild.String("auto_pad", "SAME_UPPER")},
		"same lower":            {onnxbuild.String("auto_pad", "SAME_LOWER")},
		"valid":                 {onnxbuild.String("auto_pad", "VALID")},
	})
}

// TestAveragePoolPadsMatchOnnxruntime: the same for AveragePool, whose
// windows past the input divide by the positions they count: the input
// alone, or with count_include_pad the explicit pads too (timm's
// ResNet-D shortcuts pool with ceil_mode and without counting pads).
func TestAveragePoolPadsMatchOnnxruntime(t *testing.T) {
	include := onnxbuild.Int("count_include_pad", 1)
	poolPadsMatch(t, "AveragePool", map[string][]*onnx.AttributeProto{
		"ceil":                              {onnxbuild.Int("ceil_mode", 1)},
		"ceil, pads":                        {onnxbuild.Int("ceil_mode", 1), onnxbuild.Ints("pads", 1, 0, 0, 1)},
		"ceil, pads, count_include_pad":     {onnxbuild.Int("ceil_mode", 1), onnxbuild.Ints("pads", 1, 0, 0, 1), include},
		"symmetric pads":                    {onnxbuild.Ints("pads", 1, 1, 1, 1)},
		"symmetric pads, count_include_pad": {onnxbuild.Ints("pads", 1, 1, 1, 1), include},
		"same upper":                        {onnxbuild.String("auto_pad", "SAME_UPPER")},
		"same lower, count_include_pad":     {onnxbuild.String("auto_pad", "SAME_LOWER"), include},
		"valid":                             {onnxbuild.String("auto_pad", "VALID")},
	})
}

// poolPadsMatch runs a Conv then op (3×3, stride 2, plus each case's
// attributes) against onnxruntime and finite differences.
func poolPadsMatch(t *testing.T, op string, cases map[string][]*onnx.AttributeProto) {
	for name, attrs := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			w := make([]float32, 4*3*3*3)
			for i := range w {
				w[i] = float32(r.NormFloat64() / 3)
			}
			b := onnxbuild.New(13)
			x := b.Input("x", onnx.TensorProto_FLOAT, 2, 3, 10, 11)
			c := b.Node("Conv", []string{x, b.Init("w", []int64{4, 3, 3, 3}, w)}, onnxbuild.Ints("kernel_shape", 3, 3), onnxbuild.Ints("pads", 1, 1, 1, 1))
			attrs = append([]*onnx.AttributeProto{onnxbuild.Ints("kernel_shape", 3, 3), onnxbuild.Ints("strides", 2, 2)}, attrs...)
			y := b.Node(op, []string{c}, attrs...)
			b.Output(y, onnx.TensorProto_FLOAT, -1, -1, -1, -1)
			m, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			in := make([]float32, 2*3*10*11)
			for i := range in {
				in[i] = float32(r.NormFloat64())
			}
			outs := builtMatchesOnnxruntime(t, b.Model, m, in, []int64{2, 3, 10, 11})
			gradientsMatch(t, m, in, outs)
		})
	}
}

// gradientsMatch checks the gradient of every weight of m's only
// weight tensor at three places against finite differences, for the
// MSE toward a random target of outs values.
func gradientsMatch(t *testing.T, m *graph.Model, x []float32, outs int) {
	t.Helper()
	net, err := Build(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewObjective(net, MSE)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	ref := make([]float32, outs)
	for i := range ref {
		ref[i] = float32(r.NormFloat64())
	}
	var names []string
	for _, w := range net.Weights {
		names = append(names, w.Name())
	}
	sampledGradientsMatch(t, o, names, x, ref, 1e-6, 1e-4)
}

// builtMatchesOnnxruntime runs model (m, its graph) on in of shape in
// onnxruntime and in gorgonia, fails where the outputs differ by more
// than 1e-5, and returns how many there are.
func builtMatchesOnnxruntime(t *testing.T, model *onnx.ModelProto, m *graph.Model, in []float32, shape []int64) int {
	t.Helper()
	data, err := proto.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := ortOutputsShaped(t, path, in, shape)
	net, err := Build(m, int(shape[0]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := net.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d outputs, onnxruntime %d", len(got), len(want))
	}
	if d := maxAbsDiff(got, want); d > 1e-5 {
		t.Errorf("max |gorgonia − onnxruntime| = %g", d)
	}
	return len(want)
}
