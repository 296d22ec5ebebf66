package upgrade_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
	"github.com/pare-dev/pare/upgrade"
)

func floats(name string, v ...float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_FLOATS.Enum(), Floats: v}
}

func noise(t *testing.T, seed uint64, shape ...int64) tensor.Dense {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 3)
	}
	d, err := tensor.New(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ruleCase is a one-op model at an old opset whose rewrite is checked in
// onnxruntime against the original.
type ruleCase struct {
	name  string
	opset int64
	shape []int64
	op    func(b *build.Builder, x string) string
	// same lists the targets where the node needs no rewrite.
	same []int64
}

var ruleCases = []ruleCase{
	{"softmax_axis1_4d", 11, []int64{2, 3, 4, 5}, func(b *build.Builder, x string) string {
		return b.Node("Softmax", []string{x}, build.Int("axis", 1))
	}, nil},
	{"logsoftmax_default_axis_3d", 9, []int64{2, 3, 4}, func(b *build.Builder, x string) string {
		return b.Node("LogSoftmax", []string{x})
	}, []int64{11}},
	{"hardmax_last_axis", 11, []int64{2, 3, 4}, func(b *build.Builder, x string) string {
		return b.Node("Hardmax", []string{x}, build.Int("axis", -1))
	}, nil},
	{"softmax_2d_default", 7, []int64{4, 6}, func(b *build.Builder, x string) string {
		return b.Node("Softmax", []string{x})
	}, []int64{11}},
	{"upsample7_nearest", 7, []int64{1, 2, 3, 4}, func(b *build.Builder, x string) string {
		return b.Node("Upsample", []string{x}, floats("scales", 1, 1, 2, 3))
	}, nil},
	{"upsample7_linear", 8, []int64{1, 2, 3, 4}, func(b *build.Builder, x string) string {
		return b.Node("Upsample", []string{x}, build.String("mode", "linear"), floats("scales", 1, 1, 2, 2))
	}, nil},
	{"resize10_linear", 10, []int64{1, 2, 3, 4}, func(b *build.Builder, x string) string {
		s := b.InitTensor(graph.FloatTensor("scales", []int64{4}, []float32{1, 1, 1.5, 2}))
		return b.Node("Resize", []string{x, s}, build.String("mode", "linear"))
	}, nil},
	{"slice1_attrs", 9, []int64{4, 6, 5}, func(b *build.Builder, x string) string {
		return b.Node("Slice", []string{x}, build.Ints("starts", 1, -4), build.Ints("ends", 1000, -1), build.Ints("axes", 0, 2))
	}, nil},
	{"topk1_k", 9, []int64{3, 7}, func(b *build.Builder, x string) string {
		return b.NodeN("TopK", []string{x}, 2, build.Int("k", 3))[0]
	}, nil},
	{"clip6_min_only", 7, []int64{3, 5}, func(b *build.Builder, x string) string {
		return b.Node("Clip", []string{x}, build.Float("min", -0.5))
	}, nil},
	{"pad2_reflect", 9, []int64{1, 2, 4, 4}, func(b *build.Builder, x string) string {
		return b.Node("Pad", []string{x}, build.String("mode", "reflect"), build.Ints("pads", 0, 0, 1, 2, 0, 0, 2, 1))
	}, nil},
	{"pad2_value", 10, []int64{1, 2, 3, 3}, func(b *build.Builder, x string) string {
		return b.Node("Pad", []string{x}, build.Ints("pads", 0, 0, 1, 1, 0, 0, 1, 1), build.Float("value", 2.5))
	}, nil},
	{"unsqueeze_reducesum", 11, []int64{2, 3, 4}, func(b *build.Builder, x string) string {
		u := b.Node("Unsqueeze", []string{x}, build.Ints("axes", 0, -1))
		return b.Node("ReduceSum", []string{u}, build.Ints("axes", 2), build.Int("keepdims", 0))
	}, nil},
	{"split_equal_then_concat", 12, []int64{2, 6, 3}, func(b *build.Builder, x string) string {
		parts := b.NodeN("Split", []string{x}, 3, build.Int("axis", 1))
		return b.Node("Concat", []string{parts[2], parts[0]}, build.Int("axis", 1))
	}, []int64{13}},
	{"reducemax_no_axes", 12, []int64{2, 3, 4}, func(b *build.Builder, x string) string {
		return b.Node("ReduceMax", []string{x}, build.Int("keepdims", 1))
	}, []int64{13, 21}},
	{"batchnorm7_dropout7", 7, []int64{2, 3, 4, 4}, func(b *build.Builder, x string) string {
		sc := b.Init("scale", []int64{3}, []float32{1, 2, 0.5})
		bi := b.Init("bias", []int64{3}, []float32{0.1, -0.2, 0.3})
		mu := b.Init("mean", []int64{3}, []float32{0.5, -1, 0})
		va := b.Init("var", []int64{3}, []float32{1, 2, 0.25})
		y := b.Node("BatchNormalization", []string{x, sc, bi, mu, va}, build.Int("spatial", 1), build.Float("epsilon", 1e-3))
		return b.NodeN("Dropout", []string{y}, 2, build.Float("ratio", 0.3))[0]
	}, nil},
}

func TestRulesAgreeInRuntime(t *testing.T) {
	for _, c := range ruleCases {
		for _, target := range []int64{11, 13, 21} {
			if target <= c.opset {
				continue
			}
			t.Run(fmt.Sprintf("%s/%d", c.name, target), func(t *testing.T) {
				mk := func() *graph.Model {
					b := build.New(c.opset)
					x := b.Input("x", onnx.TensorProto_FLOAT, c.shape...)
					y := c.op(b, x)
					b.Output(y, onnx.TensorProto_FLOAT)
					m, err := b.Build()
					if err != nil {
						t.Fatal(err)
					}
					return m
				}
				orig, m := mk(), mk()
				rep, err := upgrade.To(m, target)
				if err != nil {
					t.Fatal(err)
				}
				if want := !slices.Contains(c.same, target); (len(rep.Rewritten) > 0) != want {
					t.Fatalf("rewritten from %d to %d: %v, want a rewrite: %v", c.opset, target, rep.Rewritten, want)
				}
				in := map[string]tensor.Dense{"x": noise(t, uint64(len(c.name)), c.shape...)}
				want, got := run(t, orig, in), run(t, m, in)
				if d := maxRel(t, got[0], want[0]); d > 1e-6 {
					t.Errorf("max |diff| / max |original| = %.3g (%v)", d, rep.Rewritten)
				}
			})
		}
	}
}

// Nodes with no exact counterpart are refused by name, and the model is
// left as it was.
func TestRefusalsNameTheNode(t *testing.T) {
	cases := []struct {
		name, want string
		opset      int64
		op         func(b *build.Builder, x string) string
	}{
		{"bn_per_element", "spatial=0", 7, func(b *build.Builder, x string) string {
			p := b.Init("p", []int64{3, 4, 4}, make([]float32, 48))
			return b.Node("BatchNormalization", []string{x, p, p, p, p}, build.Int("spatial", 0))
		}},
		{"image_scaler", "ImageScaler", 8, func(b *build.Builder, x string) string {
			return b.Node("ImageScaler", []string{x}, build.Float("scale", 2))
		}},
		{"dropout_mask_read", "mask", 7, func(b *build.Builder, x string) string {
			o := b.NodeN("Dropout", []string{x}, 2)
			return b.Node("Add", []string{o[0], o[1]})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := build.New(c.opset)
			x := b.Input("x", onnx.TensorProto_FLOAT, 2, 3, 4, 4)
			b.Output(c.op(b, x), onnx.TensorProto_FLOAT)
			m, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			before, _ := m.Marshal()
			_, err = upgrade.To(m, 13)
			if err == nil || !errors.Is(err, upgrade.ErrUnsupported) || !errors.Is(err, graph.ErrUnsupported) {
				t.Fatalf("error %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "node \"") {
				t.Errorf("error %q does not name the node and %q", err, c.want)
			}
			after, _ := m.Marshal()
			if string(before) != string(after) || m.OpsetVersion("") != c.opset {
				t.Error("refused upgrade changed the model")
			}
		})
	}
}
