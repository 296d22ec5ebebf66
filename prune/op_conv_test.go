package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestConvRule(t *testing.T) {
	t.Run("plain chain", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 8, 8)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 3, 3), initW(b, "b1", 4)}, build.Ints("pads", 1, 1, 1, 1))
		r := b.Node("Relu", []string{c1})
		c2 := b.Node("Conv", []string{r, initW(b, "w2", 5, 4, 1, 1)})
		b.Output(c2, f32, -1, 5, 8, 8)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantPrunable(t, g)
		wantMembers(t, g, "w1:0:weight-out", "b1:0:bias", "w2:1:weight-in")
		wantFrozen(t, groupOfNode(t, a, "Conv_3"), "graph output")
		pruneIdx(t, a, g, 0, 2)
		wantDims(t, m, "w1", 2, 3, 3, 3)
		wantDims(t, m, "b1", 2)
		wantDims(t, m, "w2", 5, 2, 1, 1)
	})
	t.Run("depthwise rewrites group", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 8, 8)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		dw := b.Node("Conv", []string{c1, initW(b, "wd", 8, 1, 3, 3)}, build.Int("group", 4), build.Ints("pads", 1, 1, 1, 1))
		c3 := b.Node("Conv", []string{dw, initW(b, "w3", 2, 8, 1, 1)})
		b.Output(c3, f32, -1, 2, 8, 8)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantMembers(t, g, "w1:0:weight-out", "wd:0:weight-out", "w3:1:weight-in")
		if g.Size != 4 {
			t.Errorf("size %d, want 4 (multiplier 2 maps two outputs per input)", g.Size)
		}
		pruneIdx(t, a, g, 1)
		wantDims(t, m, "wd", 6, 1, 3, 3)
		wantDims(t, m, "w3", 2, 6, 1, 1)
		if got := m.Graph.Nodes[1].IntAttr("group", 0); got != 3 {
			t.Errorf("group = %d, want 3", got)
		}
	})
	t.Run("grouped conv couples offsets", func(t *testing.T) {
		// 6 channels → Conv of 2 groups (3 in, 2 out each) → 1×1 Conv.
		b := build.New(13)
		x := b.Input("x", f32, -1, 4, 8, 8)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 6, 4, 1, 1)})
		c2 := b.Node("Conv", []string{c1, initW(b, "w2", 4, 3, 3, 3), initW(b, "b2", 4)}, build.Int("group", 2), build.Ints("pads", 1, 1, 1, 1))
		c3 := b.Node("Conv", []string{c2, initW(b, "w3", 5, 4, 1, 1)})
		b.Output(c3, f32, -1, 5, 8, 8)
		m, a := analyzeBuilt(t, b)
		in := groupOfNode(t, a, "Conv_1")
		wantPrunable(t, in)
		wantMembers(t, in, "w1:0:weight-out", "w2:1:weight-in")
		if in.Size != 3 {
			t.Errorf("input group size %d, want 3 (one index per offset in a group of 3)", in.Size)
		}
		out := groupOfNode(t, a, "Conv_2")
		wantPrunable(t, out)
		wantMembers(t, out, "w2:0:weight-out", "b2:0:bias", "w3:1:weight-in")
		if out.Size != 2 {
			t.Errorf("output group size %d, want 2", out.Size)
		}
		pruneIdx(t, a, in, 1)
		pruneIdx(t, a, out, 0)
		wantDims(t, m, "w1", 4, 4, 1, 1)
		wantDims(t, m, "w2", 2, 2, 3, 3)
		wantDims(t, m, "b2", 2)
		wantDims(t, m, "w3", 5, 2, 1, 1)
		if got := m.Graph.Nodes[1].IntAttr("group", 0); got != 2 {
			t.Errorf("group = %d, want 2 (every group keeps its place)", got)
		}
	})
	t.Run("grouped conv of a fixed input prunes its outputs", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 4, 8, 8)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 2, 1, 1)}, build.Int("group", 2))
		c2 := b.Node("Conv", []string{c1, initW(b, "w2", 3, 4, 1, 1)})
		b.Output(c2, f32, -1, 3, 8, 8)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantMembers(t, g, "w1:0:weight-out", "w2:1:weight-in")
		pruneIdx(t, a, g, 1)
		wantDims(t, m, "w1", 2, 2, 1, 1)
		wantDims(t, m, "w2", 3, 2, 1, 1)
	})
	t.Run("grouped conv whose outputs do not divide freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 4, 8, 8)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 4, 1, 1)})
		c2 := b.Node("Conv", []string{c1, initW(b, "w2", 3, 2, 1, 1)}, build.Int("group", 2))
		b.Output(c2, f32, -1, 3, 8, 8)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "do not divide into its groups")
	})
	t.Run("conv transpose", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		ct := b.Node("ConvTranspose", []string{c1, initW(b, "wt", 4, 6, 2, 2), initW(b, "bt", 6)}, build.Ints("strides", 2, 2))
		c3 := b.Node("Conv", []string{ct, initW(b, "w3", 2, 6, 1, 1)})
		b.Output(c3, f32, -1, 2, 8, 8)
		m, a := analyzeBuilt(t, b)
		wantMembers(t, groupOfNode(t, a, "Conv_1"), "w1:0:weight-out", "wt:0:weight-in")
		g := groupOfNode(t, a, "ConvTranspose_2")
		wantMembers(t, g, "wt:1:weight-out", "bt:0:bias", "w3:1:weight-in")
		pruneIdx(t, a, g, 0, 5)
		wantDims(t, m, "wt", 4, 4, 2, 2)
		wantDims(t, m, "w3", 2, 4, 1, 1)
	})
	t.Run("non-constant weight freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		w := b.Input("w", f32, 2, 4, 1, 1)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		c2 := b.Node("Conv", []string{c1, w})
		b.Output(c2, f32, -1, 2, 4, 4)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "not a constant")
	})
}
