package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestNormRule(t *testing.T) {
	conv := func(b *build.Builder) string {
		x := b.Input("x", f32, -1, 3, 4, 4)
		return b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
	}
	t.Run("batchnorm", func(t *testing.T) {
		b := build.New(13)
		bn := b.Node("BatchNormalization", []string{conv(b), initW(b, "s", 4), initW(b, "bb", 4), initW(b, "mu", 4), initW(b, "var", 4)})
		y := b.Node("Conv", []string{bn, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantMembers(t, g, "w1:0:weight-out", "s:0:norm-scale", "bb:0:norm-bias", "mu:0:norm-stat", "var:0:norm-stat", "w2:1:weight-in")
		pruneIdx(t, a, g, 1, 2)
		wantDims(t, m, "var", 2)
	})
	t.Run("instance norm and prelu", func(t *testing.T) {
		b := build.New(13)
		in := b.Node("InstanceNormalization", []string{conv(b), initW(b, "s", 4), initW(b, "bb", 4)})
		p := b.Node("PRelu", []string{in, initW(b, "slope", 4, 1, 1)})
		y := b.Node("Conv", []string{p, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		_, a := analyzeBuilt(t, b)
		wantMembers(t, groupOfNode(t, a, "Conv_1"), "w1:0:weight-out", "s:0:norm-scale", "bb:0:norm-bias", "slope:0:const", "w2:1:weight-in")
	})
	t.Run("layer norm over channels is inexact", func(t *testing.T) {
		b := build.New(17)
		x := b.Input("x", f32, -1, 5, 6)
		h := b.Node("MatMul", []string{x, initW(b, "w1", 6, 4)})
		ln := b.Node("LayerNormalization", []string{h, initW(b, "g", 4), initW(b, "be", 4)})
		y := b.Node("MatMul", []string{ln, initW(b, "w2", 4, 2)})
		b.Output(y, f32, -1, 5, 2)
		_, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "MatMul_1")
		wantPrunable(t, g)
		if g.Inexact == "" {
			t.Error("layer norm group not marked inexact")
		}
		wantMembers(t, g, "w1:1:weight-out", "g:0:norm-scale", "be:0:norm-bias", "w2:0:weight-in")
	})
	t.Run("group norm freezes", func(t *testing.T) {
		b := build.New(18)
		gn := b.Node("GroupNormalization", []string{conv(b), initW(b, "s", 2), initW(b, "bb", 2)}, build.Int("num_groups", 2))
		y := b.Node("Conv", []string{gn, initW(b, "w2", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "GroupNormalization")
	})
}
