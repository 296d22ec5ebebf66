package prune

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
)

func TestRefine(t *testing.T) {
	st := func(c int64) fdim { return fdim{c, ""} }
	b := fdim{1, "batch"}
	for _, tc := range []struct {
		name   string
		a, b   []fdim
		atoms  []fdim
		as, bs [][2]int
		fail   bool
	}{
		{name: "heads split", a: []fdim{b, st(32), st(64)}, b: []fdim{b, st(32), st(4), st(16)},
			atoms: []fdim{b, st(32), st(4), st(16)}, as: [][2]int{{0, 1}, {1, 2}, {2, 4}}, bs: [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{name: "heads folded into batch", a: []fdim{st(17), b, st(64)}, b: []fdim{st(17), {4, "batch"}, st(16)},
			atoms: []fdim{st(17), b, st(4), st(16)}, as: [][2]int{{0, 1}, {1, 2}, {2, 4}}, bs: [][2]int{{0, 1}, {1, 3}, {3, 4}}},
		{name: "merge back", a: []fdim{st(17), {4, "batch"}, st(16)}, b: []fdim{{17, "batch"}, st(64)},
			atoms: []fdim{st(17), b, st(4), st(16)}, as: [][2]int{{0, 1}, {1, 3}, {3, 4}}, bs: [][2]int{{0, 2}, {2, 4}}},
		{name: "size-1 dims", a: []fdim{st(1), st(6)}, b: []fdim{st(2), st(1), st(3)},
			atoms: []fdim{st(2), st(3)}, as: [][2]int{{0, 0}, {0, 2}}, bs: [][2]int{{0, 1}, {1, 1}, {1, 2}}},
		{name: "sizes that do not divide", a: []fdim{st(6), st(4)}, b: []fdim{st(4), st(6)}, fail: true},
		{name: "different symbols", a: []fdim{b, st(4)}, b: []fdim{{1, "seq"}, st(4)}, fail: true},
	} {
		atoms, as, bs, ok := refine(tc.a, tc.b)
		if ok == tc.fail {
			t.Errorf("%s: ok %v", tc.name, ok)
			continue
		}
		if tc.fail {
			continue
		}
		if !slices.Equal(atoms, tc.atoms) || !slices.Equal(as, tc.as) || !slices.Equal(bs, tc.bs) {
			t.Errorf("%s: atoms %v spans %v %v, want %v %v %v", tc.name, atoms, as, bs, tc.atoms, tc.as, tc.bs)
		}
	}
}

// mhaLayout builds nn.MultiheadAttention's layout: x[S,B,E] → Q, K, V
// [S,B,E] → [S,B·H,D] (shape computed from Shape(x)) → Transpose to
// [B·H,S,D] → attention → back to [S·B,E] → output projection.
func mhaLayout(t *testing.T) (*graph.Model, *Analysis) {
	t.Helper()
	const s, e, h, d = 3, 8, 2, 4
	b := build.New(13)
	x := b.Input("x", f32, s, -1, e)
	ints := func(name string, v ...int64) string { return b.InitInts(name, []int64{int64(len(v))}, v) }
	shp := b.Node("Shape", []string{x})
	bat := b.Node("Gather", []string{shp, b.InitInts("one", nil, []int64{1})}, build.Int("axis", 0))
	bh := b.Node("Mul", []string{bat, b.InitInts("h", nil, []int64{h})})
	emb := b.Node("Gather", []string{shp, b.InitInts("two", nil, []int64{2})}, build.Int("axis", 0))
	dd := b.Node("Div", []string{emb, b.InitInts("h2", nil, []int64{h})})
	u := func(v string) string { return b.Node("Unsqueeze", []string{v, ints("ax_"+v, 0)}) }
	target := b.Node("Concat", []string{ints("s", s), u(bh), u(dd)}, build.Int("axis", 0))
	proj := func(w string, seed int) string {
		y := b.Node("MatMul", []string{x, initW(b, w, e, e)})
		y = b.Node("Reshape", []string{y, target})
		return b.Node("Transpose", []string{y}, build.Ints("perm", 1, 0, 2)) // [B·H,S,D]
	}
	q, k, v := proj("wq", 1), proj("wk", 2), proj("wv", 3)
	kt := b.Node("Transpose", []string{k}, build.Ints("perm", 0, 2, 1))
	p := b.Node("Softmax", []string{b.Node("MatMul", []string{q, kt})}, build.Int("axis", -1))
	c := b.Node("MatMul", []string{p, v})
	c = b.Node("Transpose", []string{c}, build.Ints("perm", 1, 0, 2)) // [S,B·H,D]
	c = b.Node("Reshape", []string{c, ints("merge", -1, e)})
	o := b.Node("MatMul", []string{c, initW(b, "wo", e, e)})
	b.Output(o, f32, -1, e)
	return analyzeBuilt(t, b)
}

func TestFactoredReshape(t *testing.T) {
	t.Run("heads folded into a symbolic batch", func(t *testing.T) {
		m, a := mhaLayout(t)
		g := groupOfNode(t, a, "MatMul_9")
		wantPrunable(t, g)
		if g.Kind != KindHeads || g.Size != 2 {
			t.Fatalf("kind %s size %d, want 2 heads", g.Kind, g.Size)
		}
		wantMembers(t, g, "wq:1:weight-out", "wk:1:weight-out", "wv:1:weight-out", "wo:0:weight-in")
		for _, mem := range g.Members {
			if !mem.Map.Equal(IndexMap{0, 0, 0, 0, 1, 1, 1, 1}) {
				t.Errorf("%s map %v", mem.Tensor, mem.Map)
			}
		}
		pruneIdx(t, a, g, 0)
		wantDims(t, m, "wq", 8, 4)
		wantDims(t, m, "wo", 4, 8)
		wantInts(t, m, "merge", -1, 4)
		for _, n := range m.Graph.Nodes {
			if n.Op() == "Reshape" && n.Input(0) != "" && n.Input(1) != "merge" {
				// the computed target became a constant: S, inferred B·H', D
				wantInts(t, m, n.Input(1), 3, -1, 4)
			}
		}
	})
	t.Run("head_dim across heads", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 8)
		q := b.Node("MatMul", []string{x, initW(b, "wq", 8, 8)})
		q = b.Node("Reshape", []string{q, b.InitInts("qs", []int64{4}, []int64{0, 0, 2, 4})})
		s := b.Node("MatMul", []string{q, b.Node("Transpose", []string{q}, build.Ints("perm", 0, 1, 3, 2))})
		b.Output(s, f32, -1, 5, 2, 2)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		a, err := Analyze(m, Options{HeadDim: true})
		if err != nil {
			t.Fatal(err)
		}
		g := groupOfNode(t, a, "MatMul_1")
		if g.Size != 4 || g.Kind != KindHeadDim {
			t.Fatalf("size %d kind %s, want 4 head-dim", g.Size, g.Kind)
		}
		pruneIdx(t, a, g, 3)
		wantInts(t, m, "qs", 0, 0, 2, 3)
		wantDims(t, m, "wq", 8, 6)
	})
	t.Run("a channel before a symbolic atom freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 8)
		h := b.Node("MatMul", []string{x, initW(b, "w1", 8, 6)})
		tr := b.Node("Transpose", []string{h}, build.Ints("perm", 1, 0)) // [6, B]
		r := b.Node("Reshape", []string{tr, b.InitInts("flat", []int64{1}, []int64{-1})})
		b.Output(r, f32, -1)
		_, a := analyzeBuilt(t, b)
		wantFrozen(t, groupOfNode(t, a, "MatMul_1"), "folded outside a symbolic dim")
	})
}
