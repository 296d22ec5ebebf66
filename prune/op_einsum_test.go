package prune_test

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
)

// Attention written with Einsum (MaxViT's export): heads are prunable
// and removing dead heads is exact in onnxruntime.
func TestEinsumAttention(t *testing.T) {
	const s, e, h, d = 4, 8, 4, 2
	b := build.New(13)
	x := b.Input("x", f32, -1, s, e)
	shape := b.InitInts("split", []int64{4}, []int64{0, 0, h, d})
	proj := func(w string, seed int) string {
		y := b.Node("MatMul", []string{x, initRand(b, w, seed, e, e)})
		return b.Node("Reshape", []string{y, shape}) // [B,S,H,D]
	}
	q, k, v := proj("wq", 1), proj("wk", 2), proj("wv", 3)
	sc := b.Node("Einsum", []string{q, k}, build.String("equation", "bihd,bjhd->bhij"))
	p := b.Node("Softmax", []string{sc}, build.Int("axis", -1))
	c := b.Node("Einsum", []string{p, v}, build.String("equation", "bhij,bjhd->bihd"))
	c = b.Node("Reshape", []string{c, b.InitInts("merge", []int64{3}, []int64{0, 0, e})})
	y := b.Node("MatMul", []string{c, initRand(b, "wo", 4, e, e)})
	b.Output(y, f32, -1, s, e)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := onlyGroup(t, an, prune.KindHeads)
	if g.Size != h {
		t.Fatalf("head group size %d, want %d", g.Size, h)
	}
	p2 := oracleBuilt(t, m, prune.Options{}, g, map[int]bool{0: true, 3: true})
	wantConst(t, p2, "wv", []int64{8, 4}, nil)
	wantConst(t, p2, "split", []int64{4}, []int64{0, 0, 2, 2})
	wantConst(t, p2, "merge", []int64{3}, []int64{0, 0, 4})

	t.Run("a reduced subscript freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 4, 6)
		q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, 6, 4)})
		r := b.Node("Einsum", []string{q, x}, build.String("equation", "bic,bjd->bij"))
		b.Output(r, f32, -1, 4, 4)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range an.Groups {
			if !g.Frozen {
				t.Errorf("group %s prunable, want frozen by the reduction", g.Name)
			}
		}
	})
}
