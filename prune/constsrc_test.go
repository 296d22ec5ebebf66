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

// A torchvision ViT exported with value_info declares the expanded class
// token as ['unk__2', 'unk__3', E]: placeholder dims where shape inference
// knows [B, 1, E]. The known 1 on the token axis must win, else the
// Concat with the patch tokens has an unknown size on its axis and the
// whole residual stream freezes. After pruning, the expanded value's
// value_info (now stale in E) is dropped.
func TestClassTokenValueInfoPlaceholders(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 3, 4)
	tok := b.Node("MatMul", []string{x, initW(b, "proj", 4, 4)}) // [B,3,4]
	shp := b.Node("Shape", []string{x})
	bat := b.Node("Gather", []string{shp, b.InitInts("i0", []int64{1}, []int64{0})}, build.Int("axis", 0))
	target := b.Node("Concat", []string{bat, b.InitInts("ones", []int64{2}, []int64{1, 1})}, build.Int("axis", 0))
	cls := b.Node("Expand", []string{initW(b, "cls", 1, 1, 4), target})
	vi := build.ValueInfo(cls, f32, -1, -1, 4)
	for i, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		d.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: []string{"unk__2", "unk__3"}[i%2]}
		if i == 2 {
			d.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 4}
		}
	}
	b.Model.Graph.ValueInfo = append(b.Model.Graph.ValueInfo, vi)
	h := b.Node("Concat", []string{cls, tok}, build.Int("axis", 1)) // [B,4,4]
	h = b.Node("Add", []string{h, initW(b, "pos", 1, 4, 4)})
	h = b.Node("LayerNormalization", []string{h, initW(b, "g", 4), initW(b, "be", 4)}, build.Int("axis", -1))
	o := b.Node("MatMul", []string{h, initW(b, "head", 4, 2)})
	b.Output(o, f32, -1, 4, 2)
	m, a := analyzeBuilt(t, b)
	if s := a.shape(cls); len(s) != 3 || s[1] != 1 || s[2] != 4 {
		t.Errorf("expanded class token shape %v, want [-1 1 4]", s)
	}
	g := groupOfNode(t, a, "MatMul_1")
	wantPrunable(t, g)
	wantMembers(t, g, "proj:1:weight-out", "cls:2:const", "pos:2:const", "g:0:norm-scale", "be:0:norm-bias", "head:0:weight-in")
	pruneIdx(t, a, g, 1)
	wantDims(t, m, "cls", 1, 1, 3)
	for _, v := range m.Graph.Proto.ValueInfo {
		if v.GetName() == cls {
			t.Errorf("stale value_info of %s kept", cls)
		}
	}
}
