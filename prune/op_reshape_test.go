package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func TestReshapeRule(t *testing.T) {
	t.Run("flatten block expansion into gemm", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		fl := b.Node("Flatten", []string{c1})
		y := b.Node("Gemm", []string{fl, initW(b, "wf", 16, 3)})
		b.Output(y, f32, -1, 3)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		for _, mem := range g.Members {
			if mem.Tensor == "wf" && !mem.Map.Equal(IndexMap{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}) {
				t.Errorf("wf map %v", mem.Map)
			}
		}
		pruneIdx(t, a, g, 1)
		wantDims(t, m, "wf", 12, 3)
	})
	t.Run("reshape literal entry rewritten", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		r := b.Node("Reshape", []string{c1, b.InitInts("shape", []int64{2}, []int64{-1, 16})})
		y := b.Node("MatMul", []string{r, initW(b, "wf", 16, 3)})
		b.Output(y, f32, -1, 3)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		pruneIdx(t, a, g, 0, 1)
		wantInts(t, m, "shape", -1, 8)
		wantDims(t, m, "wf", 8, 3)
	})
	t.Run("channel shuffle", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, 1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 6, 3, 1, 1)})
		r1 := b.Node("Reshape", []string{c1, b.InitInts("s1", []int64{5}, []int64{1, 2, 3, 2, 2})})
		tr := b.Node("Transpose", []string{r1}, build.Ints("perm", 0, 2, 1, 3, 4))
		r2 := b.Node("Reshape", []string{tr, b.InitInts("s2", []int64{4}, []int64{1, 6, 2, 2})})
		y := b.Node("Conv", []string{r2, initW(b, "w2", 2, 6, 1, 1)})
		b.Output(y, f32, 1, 2, 2, 2)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantPrunable(t, g)
		if g.Size != 3 {
			t.Fatalf("size %d, want 3 (channel c and c+3 go together)", g.Size)
		}
		for _, mem := range g.Members {
			if mem.Tensor == "w2" && !mem.Map.Equal(IndexMap{0, 0, 1, 1, 2, 2}) {
				t.Errorf("w2 map %v (interleaved after the shuffle)", mem.Map)
			}
			if mem.Tensor == "w1" && !mem.Map.Equal(IndexMap{0, 1, 2, 0, 1, 2}) {
				t.Errorf("w1 map %v", mem.Map)
			}
		}
		pruneIdx(t, a, g, 1)
		wantInts(t, m, "s1", 1, 2, 2, 2, 2)
		wantInts(t, m, "s2", 1, 4, 2, 2)
		wantDims(t, m, "w1", 4, 3, 1, 1)
	})
	t.Run("folded shape is replaced by a constant", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		sh := b.Node("Shape", []string{c1})
		r := b.Node("Reshape", []string{c1, sh})
		c2 := b.Node("Conv", []string{r, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(c2, f32, -1, 2, 2, 2)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantPrunable(t, g)
		pruneIdx(t, a, g, 0)
		var rs *graph.Node
		for _, n := range m.Graph.Nodes {
			if n.Op() == "Reshape" {
				rs = n
			}
		}
		wantInts(t, m, rs.Input(1), 0, 3, 2, 2)
	})
	t.Run("shape read at run time freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		sh := b.Node("Shape", []string{c1})
		z := b.Node("ConstantOfShape", []string{sh})
		b.Output(z, f32, -1, 4, 2, 2)
		c2 := b.Node("Conv", []string{c1, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(c2, f32, -1, 2, 2, 2)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "computes with this dim's size (read by ConstantOfShape")
	})
	t.Run("shape given as an input freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		s := b.Input("s", onnx.TensorProto_INT64, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		r := b.Node("Reshape", []string{c1, s})
		c2 := b.Node("Conv", []string{r, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(c2, f32, -1, 2, 2, 2)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "computed at run time")
	})
	t.Run("transpose and unsqueeze track the axis", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 2, 2)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		tr := b.Node("Transpose", []string{c1}, build.Ints("perm", 0, 2, 3, 1))
		mm := b.Node("MatMul", []string{tr, initW(b, "w2", 4, 5)})
		u := b.Node("Unsqueeze", []string{mm, b.InitInts("ax", []int64{1}, []int64{0})})
		b.Output(u, f32, 1, -1, 2, 2, 5)
		_, a := analyzeBuilt(t, b)
		wantMembers(t, groupOfNode(t, a, "Conv_1"), "w1:0:weight-out", "w2:0:weight-in")
		wantFrozen(t, groupOfNode(t, a, "MatMul_3"), "graph output")
	})
}
