package prune

import (
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestRMSNorm(t *testing.T) {
	rms := func(t *testing.T, useMul bool, divBy string) *Analysis {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 6)
		h := b.Node("MatMul", []string{x, initW(b, "w1", 6, 4)})
		var sq string
		if useMul {
			sq = b.Node("Mul", []string{h, h})
		} else {
			sq = b.Node("Pow", []string{h, b.Init("two", nil, []float32{2})})
		}
		ms := b.Node("ReduceMean", []string{sq}, build.Ints("axes", -1))
		ms = b.Node("Add", []string{ms, b.Init("eps", nil, []float32{1e-6})})
		r := b.Node("Sqrt", []string{ms})
		num := h
		if divBy != "" {
			num = divBy
		}
		y := b.Node("Div", []string{num, r})
		y = b.Node("Mul", []string{y, initW(b, "gamma", 4)})
		o := b.Node("MatMul", []string{y, initW(b, "w2", 4, 3)})
		b.Output(o, f32, -1, 5, 3)
		_, a := analyzeBuilt(t, b)
		return a
	}
	for _, useMul := range []bool{false, true} {
		a := rms(t, useMul, "")
		g := groupOfNode(t, a, "MatMul_1")
		wantPrunable(t, g)
		wantMembers(t, g, "w1:1:weight-out", "gamma:0:const", "w2:0:weight-in")
		if !strings.Contains(g.Inexact, "RMS norm") || g.Kind != KindEmbed {
			t.Errorf("inexact %q kind %q, want an RMS norm embed group", g.Inexact, g.Kind)
		}
	}
	t.Run("mean of squares used otherwise freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 6)
		h := b.Node("MatMul", []string{x, initW(b, "w1", 6, 4)})
		sq := b.Node("Pow", []string{h, b.Init("two", nil, []float32{2})})
		ms := b.Node("ReduceMean", []string{sq}, build.Ints("axes", -1))
		y := b.Node("Mul", []string{x, ms})
		b.Output(y, f32, -1, 5, 6)
		o := b.Node("MatMul", []string{h, initW(b, "w2", 4, 3)})
		b.Output(o, f32, -1, 5, 3)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "MatMul_1"), "reduction over the channel axis")
	})
}
