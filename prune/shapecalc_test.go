package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

// A packed projection cut in three by bounds computed from its own size
// (Shape → Gather → Div 3 → Mul k), as nn.MultiheadAttention exports it.
func TestComputedSliceBounds(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 4)
	qkv := b.Node("MatMul", []string{x, initW(b, "w", 4, 6)})
	shp := b.Node("Shape", []string{qkv})
	last := b.Node("Gather", []string{shp, b.InitInts("m1", []int64{1}, []int64{-1})}, build.Int("axis", 0))
	third := b.Node("Div", []string{last, b.InitInts("three", []int64{1}, []int64{3})})
	bound := func(k int64, name string) string {
		return b.Node("Mul", []string{third, b.InitInts(name, []int64{1}, []int64{k})})
	}
	b0, b1, b2, b3 := b.InitInts("zero", []int64{1}, []int64{0}), bound(1, "k1"), bound(2, "k2"), bound(3, "k3")
	axes := b.InitInts("axes", []int64{1}, []int64{-1})
	q := b.Node("Slice", []string{qkv, b0, b1, axes})
	k := b.Node("Slice", []string{qkv, b1, b2, axes})
	v := b.Node("Slice", []string{qkv, b2, b3, axes})
	s := b.Node("Add", []string{b.Node("Add", []string{q, k}), v})
	o := b.Node("MatMul", []string{s, initW(b, "w2", 2, 3)})
	b.Output(o, f32, -1, 3)
	m, a := analyzeBuilt(t, b)
	g := groupOfNode(t, a, "MatMul_1")
	wantPrunable(t, g)
	if g.Size != 2 {
		t.Fatalf("size %d, want 2 (q, k and v positions coupled by the Adds)", g.Size)
	}
	pruneIdx(t, a, g, 1)
	wantDims(t, m, "w", 4, 3)
	var bounds [][2]string
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Slice" {
			bounds = append(bounds, [2]string{n.Input(1), n.Input(2)})
		}
	}
	want := [][2]int64{{0, 1}, {1, 2}, {2, 3}}
	for i, bd := range bounds {
		wantInts(t, m, bd[0], want[i][0])
		wantInts(t, m, bd[1], want[i][1])
	}
}
