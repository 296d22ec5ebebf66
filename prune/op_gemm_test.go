package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestGemmRule(t *testing.T) {
	t.Run("gemm transB with bias", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 6)
		h := b.Node("Gemm", []string{x, initW(b, "w1", 4, 6), initW(b, "b1", 4)}, build.Int("transB", 1))
		r := b.Node("Relu", []string{h})
		y := b.Node("Gemm", []string{r, initW(b, "w2", 4, 3)})
		b.Output(y, f32, -1, 3)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Gemm_1")
		wantMembers(t, g, "w1:0:weight-out", "b1:0:bias", "w2:0:weight-in")
		pruneIdx(t, a, g, 3)
		wantDims(t, m, "w1", 3, 6)
		wantDims(t, m, "w2", 3, 3)
	})
	t.Run("matmul constant right operand", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 6)
		h := b.Node("MatMul", []string{x, initW(b, "w1", 6, 4)})
		a1 := b.Node("Add", []string{h, initW(b, "b1", 4)})
		y := b.Node("MatMul", []string{a1, initW(b, "w2", 4, 2)})
		b.Output(y, f32, -1, 5, 2)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "MatMul_1")
		wantMembers(t, g, "w1:1:weight-out", "b1:0:const", "w2:0:weight-in")
		pruneIdx(t, a, g, 0)
		wantDims(t, m, "b1", 3)
		wantDims(t, m, "w2", 3, 2)
	})
	t.Run("matmul between activations couples the contracted axis", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 6)
		q := b.Node("MatMul", []string{x, initW(b, "wq", 6, 4)})
		k := b.Node("MatMul", []string{x, initW(b, "wk", 6, 4)})
		kt := b.Node("Transpose", []string{k}, build.Ints("perm", 0, 2, 1))
		s := b.Node("MatMul", []string{q, kt})
		b.Output(s, f32, -1, 5, 5)
		_, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "MatMul_1")
		wantPrunable(t, g)
		wantMembers(t, g, "wq:1:weight-out", "wk:1:weight-out")
		if g.Kind != KindHeadDim {
			t.Errorf("kind %q, want %q", g.Kind, KindHeadDim)
		}
	})
}
