package grad

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

const models = "../fixtures/models/"

// testRows reads n Fashion-MNIST test images (n·784 float32 values).
func testRows(t testing.TB, start, n int) []float32 {
	t.Helper()
	f, err := tensor.OpenNpy("../fixtures/data/fmnist_test_x.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.ReadRows(int64(start), int64(n))
	if err != nil {
		t.Fatal(err)
	}
	return d.Data.([]float32)
}

// ortOutputs runs the model file in onnxruntime on x.
func ortOutputs(t *testing.T, path string, x []float32, batch int) []float32 {
	return ortOutputsShaped(t, path, x, []int64{int64(batch), 1, 28, 28})
}

// ortOutputsShaped runs the model file in onnxruntime on x of shape.
func ortOutputsShaped(t *testing.T, path string, x []float32, shape []int64) []float32 {
	t.Helper()
	in, err := tensor.New(shape, x)
	if err != nil {
		t.Fatal(err)
	}
	return ortOnly(t, path, in)
}

// ortOnly runs the model file in onnxruntime on its only input.
func ortOnly(t *testing.T, path string, in tensor.Dense) []float32 {
	t.Helper()
	return ortInputs(t, path, map[string]tensor.Dense{"": in})
}

func maxAbsDiff(a []float64, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-float64(b[i])))
	}
	return m
}

// TestForwardMatchesOnnxruntime: the gorgonia translation of each trained
// fixture computes what onnxruntime computes.
func TestForwardMatchesOnnxruntime(t *testing.T) {
	const batch = 8
	x := testRows(t, 0, batch)
	for _, name := range []string{"fmnist_resnet_bn_op17", "fmnist_resnet_op17", "fmnist_vit_op17",
		"fmnist_mobilenet_op17", "fmnist_densenet_op17", "fmnist_opnet_op12"} {
		t.Run(name, func(t *testing.T) {
			path := models + name + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			net, err := Build(m, batch)
			if err != nil {
				t.Fatal(err)
			}
			got, err := net.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			want := ortOutputs(t, path, x, batch)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, onnxruntime %d", len(got), len(want))
			}
			if d := maxAbsDiff(got, want); d > 1e-3 {
				t.Errorf("max |gorgonia − onnxruntime| = %g", d)
			} else {
				t.Logf("max |gorgonia − onnxruntime| = %.2g over %d logits, %d weights", d, len(got), len(net.Weights))
			}
		})
	}
}

// TestForwardMatchesOnnxruntimeArchitectures: the same on fixtures of
// other architectures and opsets, with random inputs: depthwise convs,
// LayerNorm over channels-last and Erf (ConvNeXt); HardSwish,
// HardSigmoid and squeeze-excitation (MobileNetV3); LayerNorm written
// out with ReduceMean and Pow (the trained ViT at opset 13, ConvNeXt at
// 13); Pad and ReduceMean over NHWC (fmnist_nhwc_op10); Upsample and
// attribute Slice/Pad (the trained opnet at opset 9 and 10); float
// Slice (the PyTorch encoder layer, ShuffleNet's channel split); an
// attention scale computed from shapes times a scalar constant (DeiT);
// the shifted-window mask built with ScatterND and float Equal, the
// rank-5 mask broadcast and the strided Slice of patch merging (Swin).
func TestForwardMatchesOnnxruntimeArchitectures(t *testing.T) {
	const batch = 2
	names := []string{"deit_nano_op17", "convnext_nano_op17", "fmnist_vit_op13", "fmnist_nhwc_op10", "fmnist_opnet_op9",
		"fmnist_opnet_op10", "transformer_encoder_op17", "swin_nano_op17"}
	if !testing.Short() {
		// inception_small: GoogLeNet's pools, ceil_mode MaxPool.
		names = append(names, "mobilenet_v3_small_w05_op17", "convnext_nano_op13", "shufflenet_v2_x05_op13", "inception_small_op13")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path := models + name + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			net, err := Build(m, batch)
			if err != nil {
				t.Fatal(err)
			}
			shape := make([]int64, 0, 4)
			for _, d := range net.Input.Shape() {
				shape = append(shape, int64(d))
			}
			r := rand.New(rand.NewPCG(1, 2))
			x := make([]float32, net.Input.Shape().TotalSize())
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			got, err := net.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			want := ortOutputsShaped(t, path, x, shape)
			if d := maxAbsDiff(got, want); d > 1e-3 {
				t.Errorf("max |gorgonia − onnxruntime| = %g", d)
			} else {
				t.Logf("max |gorgonia − onnxruntime| = %.2g over %d outputs", d, len(got))
			}
		})
	}
}

// TestRefusesUncoveredOp: a model with an op that has no rule is refused
// naming the op and the node.
func TestRefusesUncoveredOp(t *testing.T) {
	m, err := graph.Load(models + "fmnist_resnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var node string
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Relu" {
			n.Proto.OpType = ptr("Selu")
			node = n.Name()
			break
		}
	}
	_, err = Build(m, 2)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	for _, want := range []string{"Selu", node} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestGradientsMatchFiniteDifferences: the gradient of the distillation
// loss with respect to weights of every kind (conv, BatchNorm scale,
// Gemm bias; attention, LayerNorm and Erf MLP weights in the ViT;
// depthwise convs, Pad, AveragePool, Split, Resize, ReduceMean and Pow
// in the other trained models) is the central finite difference of the
// loss. With -short, the DenseNet and the op-13 ViT are skipped.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	const batch = 4
	x := testRows(t, 0, batch)
	for _, tc := range []struct {
		model   string
		weights []string
	}{
		{"fmnist_resnet_bn_op17", []string{"stem.0.weight", "layers.1.conv2.weight", "layers.2.bn1.weight", "layers.2.downsample.1.weight", "fc.bias"}},
		{"fmnist_vit_op17", nil}, // every seventh weight, below
		// Depthwise convs (GroupConv) and Clip; Pad, AveragePool and
		// Concat; Split, Resize and MaxPool; ReduceMean and Pow.
		{"fmnist_mobilenet_op17", nil},
		{"fmnist_densenet_op17", nil},
		{"fmnist_opnet_op12", nil},
		{"fmnist_vit_op13", nil},
	} {
		t.Run(tc.model, func(t *testing.T) {
			if testing.Short() && (tc.model == "fmnist_densenet_op17" || tc.model == "fmnist_vit_op13") {
				t.Skip("-short")
			}
			path := models + tc.model + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// References from other images, so the loss is not at its
			// minimum and the gradients are not zero.
			ref := ortOutputs(t, path, testRows(t, batch, batch), batch)
			losses := []Loss{KL, MSE}
			if testing.Short() {
				losses = losses[:1]
			}
			for _, loss := range losses {
				net, err := Build(m, batch)
				if err != nil {
					t.Fatal(err)
				}
				o, err := NewObjective(net, loss)
				if err != nil {
					t.Fatal(err)
				}
				names := tc.weights
				if names == nil {
					for i, w := range net.Weights {
						if i%7 == 0 {
							names = append(names, w.Name())
						}
					}
				}
				for _, name := range names {
					data := net.Data(name)
					if data == nil {
						t.Fatalf("no weight %s", name)
					}
					if _, err := o.Step(x, ref); err != nil {
						t.Fatal(err)
					}
					g := append([]float64(nil), o.Grad(name)...)
					for _, i := range []int{0, len(data) - 1} {
						fd := finiteDifference(t, func() (float64, error) { return o.Step(x, ref) }, data, i)
						if math.Abs(fd-g[i]) > 1e-5+1e-3*math.Abs(fd) {
							t.Errorf("%v %s[%d]: gradient %.8g, finite difference %.8g", loss, name, i, g[i], fd)
						}
					}
				}
			}
		})
	}
}

// testIDs reads rows [start, start+n) of the decoder's held-out token
// windows (n·seq int64 ids) and the sequence length.
func testIDs(t *testing.T, start, n int) ([]int64, int) {
	t.Helper()
	f, err := tensor.OpenNpy("../fixtures/data/llama_test_ids.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.ReadRows(int64(start), int64(n))
	if err != nil {
		t.Fatal(err)
	}
	return d.Data.([]int64), int(d.Shape[1])
}

// ortTokens runs the model file in onnxruntime on token ids [batch, seq].
func ortTokens(t *testing.T, path string, ids []int64, batch, seq int) []float32 {
	t.Helper()
	in, err := tensor.New([]int64{int64(batch), int64(seq)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	return ortOnly(t, path, in)
}

// TestDecoderForwardMatchesOnnxruntime: the trained Llama-style decoder
// (token-id input, embedding Gather, rotary tables and causal mask
// folded at build time, grouped-query attention, RMSNorm, SwiGLU)
// computes onnxruntime's logits on held-out text, at two sequence
// lengths.
func TestDecoderForwardMatchesOnnxruntime(t *testing.T) {
	const batch = 3
	path := models + "llama_char_op17.onnx"
	ids, seq := testIDs(t, 0, batch)
	for _, s := range []int{seq, 17} {
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]int64, 0, batch*s)
		for b := range batch {
			x = append(x, ids[b*seq:b*seq+s]...)
		}
		net, err := BuildShape(m, []int64{batch, int64(s)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := net.ForwardTokens(x)
		if err != nil {
			t.Fatal(err)
		}
		want := ortTokens(t, path, x, batch, s)
		if len(got) != len(want) {
			t.Fatalf("seq %d: %d logits, onnxruntime %d", s, len(got), len(want))
		}
		scale := 0.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if d := maxAbsDiff(got, want); d > 1e-5*scale {
			t.Errorf("seq %d: max |gorgonia − onnxruntime| = %g (logits up to %g)", s, d, scale)
		} else {
			t.Logf("seq %d: max |gorgonia − onnxruntime| = %.2g over %d logits up to %.3g, %d weights", s, d, len(got), scale, len(net.Weights))
		}
	}
}

// TestDecoderGradientsMatchFiniteDifferences: on the trained decoder,
// the gradient of the per-position KL (and of the MSE) toward another
// text's logits is the loss's central finite difference for every
// weight: the embedding table (whose rows of the ids seen collect the
// gradient), the attention projections through the rotary embedding,
// the causal softmax and the repeated key/value heads, the RMSNorm
// scales and the SwiGLU projections.
func TestDecoderGradientsMatchFiniteDifferences(t *testing.T) {
	const batch, seq = 2, 12
	path := models + "llama_char_op17.onnx"
	all, full := testIDs(t, 0, 2*batch)
	cut := func(rows []int64) []int64 {
		var x []int64
		for b := range len(rows) / full {
			x = append(x, rows[b*full:b*full+seq]...)
		}
		return x
	}
	x, other := cut(all[:batch*full]), cut(all[batch*full:])
	ref := ortTokens(t, path, other, batch, seq)
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	losses := []Loss{KL, MSE}
	if testing.Short() {
		losses = losses[:1]
	}
	for _, loss := range losses {
		net, err := BuildShape(m, []int64{batch, seq})
		if err != nil {
			t.Fatal(err)
		}
		o, err := NewObjective(net, loss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.StepTokens(x, ref); err != nil {
			t.Fatal(err)
		}
		for _, name := range net.WeightNames() {
			data := net.Data(name)
			if _, err := o.StepTokens(x, ref); err != nil {
				t.Fatal(err)
			}
			g := append([]float64(nil), o.Grad(name)...)
			at := []int{0, len(data) - 1}
			if name == "embed_tokens.weight" {
				// Entries of the rows of two tokens the text uses.
				h := net.Weight(name).Shape()[1]
				at = []int{int(x[0])*h + 3, int(x[len(x)-1])*h + h - 1}
			}
			for _, i := range at {
				fd := finiteDifference(t, func() (float64, error) { return o.StepTokens(x, ref) }, data, i)
				if math.Abs(fd-g[i]) > 1e-6+1e-3*math.Abs(fd) {
					t.Errorf("%v %s[%d]: gradient %.8g, finite difference %.8g", loss, name, i, g[i], fd)
				} else if g[i] == 0 {
					t.Errorf("%v %s[%d]: zero gradient", loss, name, i)
				}
			}
		}
	}
}

// finiteDifference is the central difference of the loss step returns
// in the weight value data[i] (step 1e-5); data[i] is left as it was.
func finiteDifference(t *testing.T, step func() (float64, error), data []float64, i int) float64 {
	t.Helper()
	const h = 1e-5
	keep := data[i]
	defer func() { data[i] = keep }()
	data[i] = keep + h
	up, err := step()
	if err != nil {
		t.Fatal(err)
	}
	data[i] = keep - h
	down, err := step()
	if err != nil {
		t.Fatal(err)
	}
	return (up - down) / (2 * h)
}

// TestCeilModeMaxPoolGradients: GoogLeNet's pools (ceil_mode, so the
// last windows run past the input) are a −∞ Pad before an unpadded
// pool. Every weight's gradient (each seventh), all of them upstream of
// at least one such pool but the classifier's, matches finite
// differences through them, on inputs of the fixture's own size.
func TestCeilModeMaxPoolGradients(t *testing.T) {
	const batch = 2
	m, err := graph.Load(models + "inception_small_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	net, err := Build(m, batch)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewObjective(net, KL)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, net.Input.Shape().TotalSize())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	ref := make([]float32, batch*int(net.Output.Shape()[1]))
	for i := range ref {
		ref[i] = float32(r.NormFloat64())
	}
	var names []string
	for k, w := range net.Weights {
		if k%7 == 0 {
			names = append(names, w.Name())
		}
	}
	if checked := sampledGradientsMatch(t, o, names, x, ref, 1e-5, 1e-3); checked < 10 {
		t.Fatalf("only %d gradients checked", checked)
	}
}

// sampledGradientsMatch checks the gradient o computes for each weight
// named, at its first, middle and last entries, against the central
// finite difference of o's loss on x toward ref: |fd − g| ≤ abs +
// rel·|fd|. It returns the number of entries checked.
func sampledGradientsMatch(t *testing.T, o *Objective, names []string, x, ref []float32, abs, rel float64) int {
	t.Helper()
	step := func() (float64, error) { return o.Step(x, ref) }
	checked := 0
	for _, name := range names {
		data := o.Net.Data(name)
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
		g := append([]float64(nil), o.Grad(name)...)
		for _, i := range []int{0, len(data) / 2, len(data) - 1} {
			fd := finiteDifference(t, step, data, i)
			if math.Abs(fd-g[i]) > abs+rel*math.Abs(fd) {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", name, i, g[i], fd)
			}
			checked++
		}
	}
	return checked
}
