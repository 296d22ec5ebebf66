package graph_test

import (
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
)

// TestWeightedAgreesWithShapes checks the weighted-layer description
// against shape inference on real exports and on the ops the fixtures
// lack: the weight's out axis (times the groups of a ConvTranspose) is
// the output's channel count, its in axis (times the groups of a Conv)
// the input's.
func TestWeightedAgreesWithShapes(t *testing.T) {
	built := func(name string, f func(b *build.Builder)) func(*testing.T) *graph.Model {
		return func(t *testing.T) *graph.Model {
			b := build.New(17)
			f(b)
			m, err := b.Build()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return m
		}
	}
	load := func(path string) func(*testing.T) *graph.Model {
		return func(t *testing.T) *graph.Model {
			m, err := graph.Load(filepath.Join("..", "fixtures", path))
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	cases := []struct {
		name string
		load func(*testing.T) *graph.Model
		ops  []string // ops that must be seen
	}{
		{"resnet18", load("models/resnet18_w16_op13.onnx"), []string{"Conv", "Gemm"}},
		{"mobilenet grouped", load("models/mobilenet_v2_w035_op13.onnx"), []string{"Conv"}},
		{"llama", load("models/llama_nano_op17.onnx"), []string{"MatMul"}},
		{"int4 decoder", load("contrib/models/llama_decoder_nbits.onnx"), []string{"MatMulNBits"}},
		{"built", built("built", func(b *build.Builder) {
			x := b.Input("x", f32, 1, 8, 4, 4)
			y := b.Node("ConvTranspose", []string{x, b.Init("ct", []int64{8, 3, 2, 2}, zeros(96))}, build.Int("group", 2))
			z := b.Node("Conv", []string{y, b.Init("c", []int64{12, 3, 1, 1}, zeros(36))}, build.Int("group", 2))
			f := b.Node("Flatten", []string{z})
			g := b.Node("Gemm", []string{f, b.Init("gb", []int64{12 * 5 * 5, 7}, zeros(12*5*5*7))})
			h := b.Node("Gemm", []string{g, b.Init("gt", []int64{5, 7}, zeros(35))}, build.Int("transB", 1))
			b.Output(b.Node("MatMul", []string{h, b.Init("mm", []int64{5, 3}, zeros(15))}), f32, 1, 3)
		}), []string{"ConvTranspose", "Conv", "Gemm", "MatMul"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.load(t)
			s, err := graph.InferShapes(m)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, n := range m.Graph.Nodes {
				w, ok := graph.WeightedOf(n)
				if !ok {
					continue
				}
				wt := m.Graph.Initializer(w.Weight())
				if wt == nil {
					continue // a MatMul between activations
				}
				if n.Op() == "MatMul" && len(wt.Dims) != 2 {
					continue
				}
				seen[n.Op()]++
				if n.Op() == "MatMulNBits" {
					k, bs := n.IntAttr("K", 0), n.IntAttr("block_size", 0)
					if wt.Dims[w.OutAxis] != n.IntAttr("N", 0) || wt.Dims[w.InAxis] != (k+bs-1)/bs {
						t.Errorf("%s: B %v, N %d, K %d, block %d", n, wt.Dims, n.IntAttr("N", 0), k, bs)
					}
					continue
				}
				inMul, outMul := int64(1), int64(1)
				if w.Spatial && w.Transposed {
					outMul = w.Group
				} else if w.Spatial {
					inMul = w.Group
				}
				axis := func(r int) int {
					if w.ChannelAxis < 0 {
						return r + w.ChannelAxis
					}
					return w.ChannelAxis
				}
				if out, ok := s.Of(n.Output(0)); ok && out.Ranked {
					if d, ok := out.Dims[axis(len(out.Dims))].Value(); ok && d != wt.Dims[w.OutAxis]*outMul {
						t.Errorf("%s: out channels %d, weight %v out axis %d", n, d, wt.Dims, w.OutAxis)
					}
				} else {
					t.Errorf("%s: output shape unknown", n)
				}
				if in, ok := s.Of(n.Input(0)); ok && in.Ranked {
					if d, ok := in.Dims[axis(len(in.Dims))].Value(); ok && d != wt.Dims[w.InAxis]*inMul {
						t.Errorf("%s: in channels %d, weight %v in axis %d", n, d, wt.Dims, w.InAxis)
					}
				}
				if w.HasBiasInput() {
					if bt := m.Graph.Initializer(w.Bias()); bt != nil && bt.Dims[0] != wt.Dims[w.OutAxis]*outMul {
						t.Errorf("%s: bias %v, weight %v", n, bt.Dims, wt.Dims)
					}
				}
			}
			for _, op := range c.ops {
				if seen[op] == 0 {
					t.Errorf("no %s layer seen", op)
				}
			}
		})
	}
}

func TestWeightedRefuses(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, 4, 4)
	b.Node("Relu", []string{x})
	b.Node("MatMulInteger", []string{x, x})
	b.Node("LayerNormalization", []string{x, b.Init("s", []int64{4}, zeros(4))})
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if graph.IsWeighted(n) {
			t.Errorf("%s described as a weighted layer", n)
		}
	}
}
