package grad

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	onnxbuild "github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// transformerCase is a token-id fixture and the input shape it is
// tested at ([1, seq] for an export with a fixed batch of one, the
// model's own length where it fixes one).
type transformerCase struct {
	model      string
	batch, seq int
	what       string // what it covers beyond the trained decoder
}

// transformers are exports whose attention computes its shapes, masks
// and positions in the graph: each covers gathers or masks the trained
// decoder (llama_char_op17) does not have.
var transformers = []transformerCase{
	{"qwen2_nano_op17", 2, 12, "rotary cache gathered at Range position ids"},
	{"gpt2_nano_op17", 2, 12, "ids reshaped before the lookup, learned positions, causal Where"},
	{"bert_nano_op17", 2, 12, "token-type rows gathered at a ConstantOfShape, padding mask"},
	{"hf_llama_tiny", 1, 12, "torch-2 dynamo export: GQA, CumSum/GatherND mask, opset 18"},
	// 80×80 mask elements: past graph inference's 4096, evaluated by
	// static.go.
	{"hf_llama_tiny", 1, 80, "the same at 80 positions"},
	{"hf_bert_tiny", 2, 12, "GatherElements of the token-type buffer, Where mask, opset 18"},
	{"gpt_nano_op17", 2, 32, "fixed length, causal Where"},
}

// randomIDs draws n token ids below 84 (the smallest vocabulary of the
// fixtures).
func randomIDs(n int, seed uint64) []int64 {
	r := rand.New(rand.NewPCG(seed, 7))
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = r.Int64N(84)
	}
	return ids
}

// TestTransformerForwardMatchesOnnxruntime: the gorgonia translation of
// each exported transformer computes onnxruntime's outputs on random
// token ids, within 1e-5 of the outputs' scale.
func TestTransformerForwardMatchesOnnxruntime(t *testing.T) {
	for _, tc := range transformers {
		t.Run(fmt.Sprintf("%s/%d", tc.model, tc.seq), func(t *testing.T) {
			path := models + tc.model + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			net, err := BuildShape(m, []int64{int64(tc.batch), int64(tc.seq)})
			if err != nil {
				t.Fatal(err)
			}
			x := randomIDs(tc.batch*tc.seq, 1)
			got, err := net.ForwardTokens(x)
			if err != nil {
				t.Fatal(err)
			}
			want := ortTokens(t, path, x, tc.batch, tc.seq)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, onnxruntime %d", len(got), len(want))
			}
			scale := 0.0
			for _, v := range want {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			if d := maxAbsDiff(got, want); d > 1e-5*scale {
				t.Errorf("max |gorgonia − onnxruntime| = %g (outputs up to %g)", d, scale)
			} else {
				t.Logf("%s: max |gorgonia − onnxruntime| = %.2g over %d outputs up to %.3g, %d weights", tc.what, d, len(got), scale, len(net.Weights))
			}
		})
	}
}

// TestTransformerGradientsMatchFiniteDifferences: on each exported
// transformer, the gradient of the KL (and, without -short, the MSE)
// toward the outputs of other ids is the loss's central finite
// difference for every weight, at its first entry and at its entry of
// largest gradient (a row of an embedding table the ids
// use, a position row, a rotary frequency): gradients through the
// static gathers, the selects of the masks and the id lookups after a
// reshape.
func TestTransformerGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range transformers {
		if tc.model == "gpt_nano_op17" || tc.seq > 32 {
			continue // long: slow, and the short cases have its ops
		}
		t.Run(tc.model, func(t *testing.T) {
			seq := min(tc.seq, 8)
			path := models + tc.model + ".onnx"
			x, other := randomIDs(tc.batch*seq, 1), randomIDs(tc.batch*seq, 2)
			ref := ortTokens(t, path, other, tc.batch, seq)
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			losses := []Loss{KL, MSE}
			if testing.Short() {
				losses = losses[:1]
			}
			for _, loss := range losses {
				net, err := BuildShape(m, []int64{int64(tc.batch), int64(seq)})
				if err != nil {
					t.Fatal(err)
				}
				o, err := NewObjective(net, loss)
				if err != nil {
					t.Fatal(err)
				}
				checkGradients(t, net, loss, func() (float64, error) { return o.StepTokens(x, ref) }, o.Grad)
			}
		})
	}
}

// TestRefusesUncoveredAttribute: what stays uncovered is refused
// naming the op and the node: a dilated MaxPool.
func TestRefusesUncoveredAttribute(t *testing.T) {
	b := onnxbuild.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 2, 3, 9, 9)
	w := b.Init("w", []int64{4, 3, 1, 1}, make([]float32, 12))
	c := b.Node("Conv", []string{x, w}, onnxbuild.Ints("kernel_shape", 1, 1))
	y := b.Node("MaxPool", []string{c}, onnxbuild.Ints("kernel_shape", 2, 2), onnxbuild.Ints("dilations", 2, 2))
	b.Last().Name = proto.String("/pool/MaxPool")
	b.Output(y, onnx.TensorProto_FLOAT, -1, -1, -1, -1)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(m, 2)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	for _, want := range []string{"MaxPool", "/pool/MaxPool", "dilated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// checkGradients compares the gradient of every weight of net, at its
// first entry and at its entry of largest gradient, with the central
// finite difference of the loss that step computes.
func checkGradients(t *testing.T, net *Net, loss Loss, step func() (float64, error), grad func(string) []float64) {
	t.Helper()
	for _, name := range net.WeightNames() {
		data := net.Data(name)
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
		g := append([]float64(nil), grad(name)...)
		top := 0
		for i, v := range g {
			if math.Abs(v) > math.Abs(g[top]) {
				top = i
			}
		}
		if g[top] == 0 {
			t.Errorf("%v %s: zero gradient", loss, name)
		}
		for _, i := range []int{0, top} {
			fd := finiteDifference(t, step, data, i)
			if math.Abs(fd-g[i]) > 1e-6+1e-3*math.Abs(fd) {
				t.Errorf("%v %s[%d]: gradient %.8g, finite difference %.8g", loss, name, i, g[i], fd)
			}
		}
	}
}

// TestChannelsLastGradientsMatchFiniteDifferences: the same on the
// Swin and ConvNeXt fixtures (MSE toward another random input's
// outputs): gradients through channels-last norms and biases (a
// broadcast over three leading axes, which gorgonia's own broadcast got
// wrong), the rank-5 broadcast of Swin's window mask and the strided
// Slice of its patch merging.
func TestChannelsLastGradientsMatchFiniteDifferences(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const batch = 2
	for _, name := range []string{"swin_nano_op17", "convnext_nano_op17"} {
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
			r := rand.New(rand.NewPCG(3, 4))
			x, y := make([]float32, net.Input.Shape().TotalSize()), make([]float32, net.Input.Shape().TotalSize())
			for i := range x {
				x[i], y[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			shape := []int64{}
			for _, d := range net.Input.Shape() {
				shape = append(shape, int64(d))
			}
			ref := ortOutputsShaped(t, path, y, shape)
			o, err := NewObjective(net, MSE)
			if err != nil {
				t.Fatal(err)
			}
			checkGradients(t, net, MSE, func() (float64, error) { return o.Step(x, ref) }, o.Grad)
		})
	}
}

// TestChunkedStepMatchesWholeBatch: a batch of four windows run in two
// chunks of a net built for two gives the whole batch's outputs, loss
// and gradients (the net built for four), to rounding.
func TestChunkedStepMatchesWholeBatch(t *testing.T) {
	const rows, seq = 4, 12
	path := models + "llama_char_op17.onnx"
	x, other := randomIDs(rows*seq, 1), randomIDs(rows*seq, 2)
	ref := ortTokens(t, path, other, rows, seq)
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var losses [2]float64
	var grads [2]map[string][]float64
	var outs [2][]float64
	for i, batch := range []int64{rows, rows / 2} {
		net, err := BuildShape(m, []int64{batch, seq})
		if err != nil {
			t.Fatal(err)
		}
		if outs[i], err = net.ForwardTokens(x); err != nil {
			t.Fatal(err)
		}
		o, err := NewObjective(net, KL)
		if err != nil {
			t.Fatal(err)
		}
		if losses[i], err = o.StepTokens(x, ref); err != nil {
			t.Fatal(err)
		}
		grads[i] = map[string][]float64{}
		for _, name := range net.WeightNames() {
			grads[i][name] = append([]float64(nil), o.Grad(name)...)
		}
	}
	if d := math.Abs(losses[0] - losses[1]); d > 1e-12 {
		t.Errorf("loss %.15g whole, %.15g in chunks", losses[0], losses[1])
	}
	worst := 0.0
	for i, v := range outs[0] {
		worst = math.Max(worst, math.Abs(v-outs[1][i]))
	}
	for name, g := range grads[0] {
		c := grads[1][name]
		if len(c) != len(g) {
			t.Fatalf("%s: %d gradient values in chunks, %d whole", name, len(c), len(g))
		}
		for i := range g {
			worst = math.Max(worst, math.Abs(g[i]-c[i]))
		}
	}
	if worst > 1e-12 {
		t.Errorf("outputs and gradients differ by up to %g between whole and chunked", worst)
	}
}
