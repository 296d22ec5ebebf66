package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// A ViT/GPT embedding: token table lookup (Gather) or patch projection,
// class token Concat of an expanded constant, position embedding Add,
// LayerNorm: the embedding width is one (inexact) group with all of them.
func TestEmbeddingSources(t *testing.T) {
	b := build.New(13)
	ids := b.Input("ids", onnx.TensorProto_INT64, -1, 3)
	tok := b.Node("Gather", []string{initW(b, "table", 10, 4), ids}, build.Int("axis", 0)) // [B,3,4]
	shp := b.Node("Shape", []string{ids})
	bat := b.Node("Gather", []string{shp, b.InitInts("i0", []int64{1}, []int64{0})}, build.Int("axis", 0))
	target := b.Node("Concat", []string{bat, b.InitInts("ones", []int64{2}, []int64{1, 1})}, build.Int("axis", 0))
	cls := b.Node("Expand", []string{initW(b, "cls", 1, 1, 4), target})
	x := b.Node("Concat", []string{cls, tok}, build.Int("axis", 1)) // [B,4,4]
	x = b.Node("Add", []string{x, initW(b, "pos", 1, 4, 4)})
	x = b.Node("LayerNormalization", []string{x, initW(b, "g", 4), initW(b, "be", 4)}, build.Int("axis", -1))
	o := b.Node("MatMul", []string{x, initW(b, "head", 4, 2)})
	b.Output(o, f32, -1, 4, 2)
	m, a := analyzeBuilt(t, b)
	g := groupOfNode(t, a, "Gather_1")
	wantPrunable(t, g)
	wantMembers(t, g, "table:1:weight-out", "cls:2:const", "pos:2:const", "g:0:norm-scale", "be:0:norm-bias", "head:0:weight-in")
	if g.Kind != KindEmbed {
		t.Errorf("kind %s, want embed", g.Kind)
	}
	pruneIdx(t, a, g, 0)
	wantDims(t, m, "table", 10, 3)
	wantDims(t, m, "cls", 1, 1, 3)
	wantDims(t, m, "pos", 1, 4, 3)
}
