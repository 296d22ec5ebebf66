package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestConcatRule(t *testing.T) {
	t.Run("concat offsets", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 2, 3, 1, 1)})
		c2 := b.Node("Conv", []string{x, initW(b, "w2", 3, 3, 1, 1)})
		cat := b.Node("Concat", []string{c1, c2}, build.Int("axis", 1))
		y := b.Node("Conv", []string{cat, initW(b, "w3", 2, 5, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		if g.Size != 5 {
			t.Fatalf("size %d, want 5 (both sources share the concat)", g.Size)
		}
		var in Member
		for _, mem := range g.Members {
			if mem.Tensor == "w3" {
				in = mem
			}
		}
		if !in.Map.Equal(IndexMap{0, 1, 2, 3, 4}) {
			t.Errorf("w3 map %v", in.Map)
		}
		pruneIdx(t, a, g, 1, 4)
		wantDims(t, m, "w1", 1, 3, 1, 1)
		wantDims(t, m, "w2", 2, 3, 1, 1)
		wantDims(t, m, "w3", 2, 3, 1, 1)
	})
	t.Run("split sizes rewritten", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		parts := b.NodeN("Split", []string{c1, b.InitInts("sizes", []int64{2}, []int64{1, 3})}, 2, build.Int("axis", 1))
		y1 := b.Node("Conv", []string{parts[0], initW(b, "wa", 2, 1, 1, 1)})
		y2 := b.Node("Conv", []string{parts[1], initW(b, "wb", 2, 3, 1, 1)})
		s := b.Node("Add", []string{y1, y2})
		b.Output(s, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		pruneIdx(t, a, g, 2)
		wantInts(t, m, "sizes", 1, 2)
		wantDims(t, m, "wb", 2, 2, 1, 1)
	})
	t.Run("slice bounds rewritten", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 6, 3, 1, 1)})
		sl := b.Node("Slice", []string{c1, b.InitInts("st", []int64{1}, []int64{2}), b.InitInts("en", []int64{1}, []int64{5}), b.InitInts("ax", []int64{1}, []int64{1})})
		y := b.Node("Conv", []string{sl, initW(b, "w2", 2, 3, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		pruneIdx(t, a, g, 0, 3)
		wantInts(t, m, "st", 1)
		wantInts(t, m, "en", 3)
		wantDims(t, m, "w2", 2, 2, 1, 1)
	})
	t.Run("computed slice bounds freeze", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		e := b.Input("e", 7, 1)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 6, 3, 1, 1)})
		sl := b.Node("Slice", []string{c1, b.InitInts("st", []int64{1}, []int64{0}), e, b.InitInts("ax", []int64{1}, []int64{1})})
		b.Output(sl, f32, -1, -1, 4, 4)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "unknown bounds")
	})
}
