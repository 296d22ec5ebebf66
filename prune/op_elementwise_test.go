package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestElementwiseRule(t *testing.T) {
	t.Run("residual add couples branches", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		c2 := b.Node("Conv", []string{c1, initW(b, "w2", 4, 4, 1, 1)})
		s := b.Node("Add", []string{c2, c1})
		y := b.Node("Conv", []string{s, initW(b, "w3", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantMembers(t, g, "w1:0:weight-out", "w2:1:weight-in", "w2:0:weight-out", "w3:1:weight-in")
		pruneIdx(t, a, g, 0)
		wantDims(t, m, "w2", 3, 3, 1, 1)
	})
	t.Run("broadcast constants sliced, scalars untouched, SE gate", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 3, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
		sc := b.Node("Mul", []string{c1, initW(b, "ls", 4, 1, 1)})
		h := b.Node("Add", []string{sc, b.Init("half", nil, []float32{0.5})})
		gp := b.Node("GlobalAveragePool", []string{h})
		gate := b.Node("Sigmoid", []string{gp})
		se := b.Node("Mul", []string{h, gate})
		y := b.Node("Conv", []string{se, initW(b, "w3", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		m, a := analyzeBuilt(t, b)
		g := groupOfNode(t, a, "Conv_1")
		wantPrunable(t, g)
		wantMembers(t, g, "w1:0:weight-out", "ls:0:const", "w3:1:weight-in")
		pruneIdx(t, a, g, 3)
		wantDims(t, m, "ls", 3, 1, 1)
		wantDims(t, m, "half")
	})
	t.Run("fixed full-size operand freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 4, 4, 4)
		c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 4, 1, 1)})
		s := b.Node("Add", []string{c1, x})
		y := b.Node("Conv", []string{s, initW(b, "w3", 2, 4, 1, 1)})
		b.Output(y, f32, -1, 2, 4, 4)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "Conv_1"), "full size and fixed")
	})
}
