package prune_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

const f32 = onnx.TensorProto_FLOAT

// weights returns n deterministic values in [-1, 1).
func weights(n int64, seed int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i*7+seed*13)+0.3)) * 0.8
	}
	return v
}

func initRand(b *build.Builder, name string, seed int, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return b.Init(name, dims, weights(n, seed))
}

// attentionGraph builds x[B,S,E] → multi-head self-attention → output
// projection, with the usual Reshape/Transpose head layout. With hkv <
// hq the keys and values have hkv heads, each repeated to hq/hkv query
// heads (Unsqueeze, Expand, Reshape), as grouped-query attention exports;
// with broadcast, a single KV head meets the query heads by MatMul
// broadcasting instead (multi-query attention).
func attentionGraph(t *testing.T, hq, hkv int64, broadcast ...bool) *graph.Model {
	t.Helper()
	const s, e, d = 4, 8, 2
	g := hq / hkv
	b := build.New(13)
	x := b.Input("x", f32, -1, s, e)
	ints := func(name string, v ...int64) string { return b.InitInts(name, []int64{int64(len(v))}, v) }
	q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, e, hq*d)})
	q = b.Node("Reshape", []string{q, ints("q_shape", 0, 0, hq, d)})
	q = b.Node("Transpose", []string{q}, build.Ints("perm", 0, 2, 1, 3)) // [B,hq,S,D]
	heads := func(w string, seed int, perm ...int64) string {
		y := b.Node("MatMul", []string{x, initRand(b, w, seed, e, hkv*d)})
		y = b.Node("Reshape", []string{y, ints(w+"_shape", 0, 0, hkv, d)})
		y = b.Node("Transpose", []string{y}, build.Ints("perm", perm...))
		if g == 1 || len(broadcast) > 0 && broadcast[0] {
			return y
		}
		y = b.Node("Unsqueeze", []string{y, ints(w+"_axes", 2)})
		last := []int64{d, s}
		if perm[2] == 1 {
			last = []int64{s, d}
		}
		y = b.Node("Expand", []string{y, ints(w+"_expand", 1, hkv, g, last[0], last[1])})
		return b.Node("Reshape", []string{y, ints(w+"_rep", 0, hq, last[0], last[1])})
	}
	k := heads("wk", 2, 0, 2, 3, 1) // [B,hq,D,S]
	v := heads("wv", 3, 0, 2, 1, 3) // [B,hq,S,D]
	sc := b.Node("MatMul", []string{q, k})
	sc = b.Node("Div", []string{sc, b.Init("scale", nil, []float32{float32(math.Sqrt(d))})})
	p := b.Node("Softmax", []string{sc}, build.Int("axis", -1))
	ctx := b.Node("MatMul", []string{p, v})
	ctx = b.Node("Transpose", []string{ctx}, build.Ints("perm", 0, 2, 1, 3))
	ctx = b.Node("Reshape", []string{ctx, ints("o_shape", 0, 0, hq*d)})
	y := b.Node("MatMul", []string{ctx, initRand(b, "wo", 4, hq*d, e)})
	b.Output(y, f32, -1, s, e)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func onlyGroup(t *testing.T, an *prune.Analysis, kind string) *prune.Group {
	t.Helper()
	var out []*prune.Group
	for _, g := range an.Prunable() {
		if g.Kind == kind {
			out = append(out, g)
		}
	}
	if len(out) != 1 {
		for _, g := range an.Groups {
			t.Logf("group %d %s kind %s size %d frozen %q", g.ID, g.Name, g.Kind, g.Size, g.Reason)
		}
		t.Fatalf("%d prunable %s groups, want 1", len(out), kind)
	}
	return out[0]
}

func memberMap(t *testing.T, g *prune.Group, tensor string) prune.IndexMap {
	t.Helper()
	for _, m := range g.Members {
		if m.Tensor == tensor {
			return m.Map
		}
	}
	t.Fatalf("group %s has no member %s", g.Name, tensor)
	return nil
}

// oracleBuilt checks that removing the channels `removed` of grp, made
// dead first by zeroing their input slices (the output projection's
// rows), leaves the outputs unchanged in onnxruntime.
func oracleBuilt(t *testing.T, m *graph.Model, opts prune.Options, grp *prune.Group, removed map[int]bool) *graph.Model {
	t.Helper()
	x, err := tensor.New([]int64{2, 4, 8}, weights(64, 9))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]tensor.Dense{"x": x}
	dead := reload(t, m)
	killInputs(t, dead, grp, removed)
	pruned := reload(t, dead)
	pa, err := prune.Analyze(pruned, opts)
	if err != nil {
		t.Fatal(err)
	}
	var kept []int
	for i := range grp.Size {
		if !removed[i] {
			kept = append(kept, i)
		}
	}
	if err := pa.Apply(map[int][]int{grp.ID: kept}); err != nil {
		t.Fatal(err)
	}
	pruned = reload(t, pruned)
	if d := maxRelDiff(t, run(t, pruned, in), run(t, dead, in)); d > oracleTolerance {
		t.Errorf("outputs differ by %.3g relative", d)
	}
	return pruned
}

func TestAttentionHeads(t *testing.T) {
	t.Run("whole heads", func(t *testing.T) {
		m := attentionGraph(t, 4, 4)
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g := onlyGroup(t, an, prune.KindHeads)
		if g.Size != 4 {
			t.Fatalf("head group size %d, want 4", g.Size)
		}
		block := prune.IndexMap{0, 0, 1, 1, 2, 2, 3, 3}
		for _, w := range []string{"wq", "wk", "wv", "wo"} {
			if got := memberMap(t, g, w); !got.Equal(block) {
				t.Errorf("%s map %v, want %v (head h owns its D positions)", w, got, block)
			}
		}
		p := oracleBuilt(t, m, prune.Options{}, g, map[int]bool{1: true, 2: true})
		wantConst(t, p, "wq", []int64{8, 4}, nil)
		wantConst(t, p, "wo", []int64{4, 8}, nil)
		wantConst(t, p, "q_shape", []int64{4}, []int64{0, 0, 2, 2})
		wantConst(t, p, "o_shape", []int64{3}, []int64{0, 0, 4})
		if sc, ok := p.Graph.Constant("scale"); !ok {
			t.Error("scale constant gone")
		} else if v, err := graph.Float32s(sc); err != nil || len(v) != 1 || v[0] != float32(math.Sqrt(2)) {
			t.Errorf("scale %v, want √D = √2 untouched", v)
		}
	})
	t.Run("head_dim uniformly across heads", func(t *testing.T) {
		m := attentionGraph(t, 4, 4)
		opts := prune.Options{HeadDim: true}
		an, err := prune.Analyze(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		var qk, vo *prune.Group
		for _, g := range an.Prunable() {
			if g.Kind != prune.KindHeadDim {
				t.Errorf("group %s kind %s", g.Name, g.Kind)
			}
			if slices.ContainsFunc(g.Members, func(m prune.Member) bool { return m.Tensor == "wq" }) {
				qk = g
			} else {
				vo = g
			}
		}
		if qk == nil || vo == nil || qk.Size != 2 || vo.Size != 2 {
			t.Fatalf("want a Q·K head_dim group and a V·O head_dim group of size 2")
		}
		rep := prune.IndexMap{0, 1, 0, 1, 0, 1, 0, 1}
		if got := memberMap(t, qk, "wk"); !got.Equal(rep) {
			t.Errorf("wk map %v, want %v", got, rep)
		}
		p := oracleBuilt(t, m, opts, vo, map[int]bool{0: true})
		wantConst(t, p, "wv", []int64{8, 4}, nil)
		wantConst(t, p, "wo", []int64{4, 8}, nil)
		wantConst(t, p, "wq", []int64{8, 8}, nil)
	})
	t.Run("grouped-query attention, --kv-groups: a KV head goes with its query heads", func(t *testing.T) {
		m := attentionGraph(t, 4, 2)
		opts := prune.Options{KVGroups: true}
		an, err := prune.Analyze(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		g := onlyGroup(t, an, prune.KindKVGroups)
		if g.Size != 2 {
			t.Fatalf("KV group size %d, want 2 (one per KV head)", g.Size)
		}
		if got, want := memberMap(t, g, "wq"), (prune.IndexMap{0, 0, 0, 0, 1, 1, 1, 1}); !got.Equal(want) {
			t.Errorf("wq map %v, want %v (query heads 0,1 with KV head 0)", got, want)
		}
		if got, want := memberMap(t, g, "wk"), (prune.IndexMap{0, 0, 1, 1}); !got.Equal(want) {
			t.Errorf("wk map %v, want %v", got, want)
		}
		p := oracleBuilt(t, m, opts, g, map[int]bool{1: true})
		wantConst(t, p, "wq", []int64{8, 4}, nil)
		wantConst(t, p, "wk", []int64{8, 2}, nil)
		wantConst(t, p, "wk_expand", []int64{5}, []int64{1, 1, 2, 2, 4})
		wantConst(t, p, "wk_rep", []int64{4}, []int64{0, 2, 2, 4})
	})
	t.Run("grouped-query attention, --heads: query head j of every KV group", func(t *testing.T) {
		m := attentionGraph(t, 4, 2)
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g := onlyGroup(t, an, prune.KindHeads)
		if g.Size != 2 {
			t.Fatalf("head group size %d, want 2 (query-head slots per KV group)", g.Size)
		}
		if got, want := memberMap(t, g, "wq"), (prune.IndexMap{0, 0, 1, 1, 0, 0, 1, 1}); !got.Equal(want) {
			t.Errorf("wq map %v, want %v (query heads 0 and 2 are slot 0)", got, want)
		}
		for _, grp := range an.Groups {
			if slices.ContainsFunc(grp.Members, func(m prune.Member) bool { return m.Tensor == "wk" }) {
				if !grp.Frozen || grp.Kind != prune.KindKVGroups || !strings.Contains(grp.Reason, "--kv-groups") {
					t.Errorf("KV heads: frozen %v, kind %s, reason %q; want frozen kv-groups naming --kv-groups", grp.Frozen, grp.Kind, grp.Reason)
				}
			}
		}
		p := oracleBuilt(t, m, prune.Options{}, g, map[int]bool{1: true})
		wantConst(t, p, "wq", []int64{8, 4}, nil)
		wantConst(t, p, "wk", []int64{8, 4}, nil)
		wantConst(t, p, "wk_expand", []int64{5}, []int64{1, 2, 1, 2, 4})
		wantConst(t, p, "wk_rep", []int64{4}, []int64{0, 2, 2, 4})
	})
	t.Run("multi-query attention: query heads against one broadcast KV head", func(t *testing.T) {
		for _, bc := range []bool{false, true} {
			m := attentionGraph(t, 4, 1, bc)
			an, err := prune.Analyze(m, prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			g := onlyGroup(t, an, prune.KindHeads)
			if g.Size != 4 {
				t.Fatalf("broadcast %v: head group size %d, want 4 query heads", bc, g.Size)
			}
			p := oracleBuilt(t, m, prune.Options{}, g, map[int]bool{1: true, 2: true})
			wantConst(t, p, "wq", []int64{8, 4}, nil)
			wantConst(t, p, "wk", []int64{8, 2}, nil)
		}
	})
	t.Run("contraction with a fixed operand freezes", func(t *testing.T) {
		b := build.New(13)
		x := b.Input("x", f32, -1, 5, 6)
		y := b.Input("y", f32, -1, 4, 5)
		q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, 6, 4)})
		s := b.Node("MatMul", []string{q, y})
		o := b.Node("MatMul", []string{s, initRand(b, "wo", 2, 5, 3)})
		b.Output(o, f32, -1, 5, 3)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range an.Groups {
			if g.Name == "MatMul_0" || slices.ContainsFunc(g.Members, func(m prune.Member) bool { return m.Tensor == "wq" }) {
				if !g.Frozen || g.Reason == "" {
					t.Errorf("group %s not frozen", g.Name)
				}
				return
			}
		}
		t.Fatal("no group for wq")
	})
}

// wantConst checks a constant's dims and (when given) int64 values.
func wantConst(t *testing.T, m *graph.Model, name string, dims, vals []int64) {
	t.Helper()
	var tp *onnx.TensorProto
	for _, init := range m.Graph.Proto.Initializer {
		if init.GetName() == name {
			tp = init
		}
	}
	if tp == nil {
		// renamed when shared or materialised: look for a prefix match
		for _, init := range m.Graph.Proto.Initializer {
			if len(init.GetName()) > len(name) && init.GetName()[:len(name)] == name {
				tp = init
			}
		}
	}
	if tp == nil {
		t.Fatalf("no initializer %s", name)
	}
	if dims != nil && !slices.Equal(tp.Dims, dims) {
		t.Errorf("%s dims %v, want %v", name, tp.Dims, dims)
	}
	if vals != nil {
		got, err := graph.Int64s(tp)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, vals) {
			t.Errorf("%s = %v, want %v", name, got, vals)
		}
	}
}

// TestScaleFromHeadSize: a softmax scale computed as
// Sqrt(Cast(Shape(q)[-1:])) (timm, Hugging Face eager attention) reads
// only head_dim, so whole heads prune (and match the dead-head oracle)
// while head_dim freezes naming the Shape; a Shape whose result nothing
// reads freezes nothing.
func TestScaleFromHeadSize(t *testing.T) {
	const s, e, h, d = 4, 8, 4, 2
	b := build.New(13)
	x := b.Input("x", f32, -1, s, e)
	ints := func(name string, v ...int64) string { return b.InitInts(name, []int64{int64(len(v))}, v) }
	split := func(w string, seed int, perm ...int64) string {
		y := b.Node("MatMul", []string{x, initRand(b, w, seed, e, h*d)})
		y = b.Node("Reshape", []string{y, ints(w+"_shape", 0, 0, h, d)})
		return b.Node("Transpose", []string{y}, build.Ints("perm", perm...))
	}
	q := split("wq", 1, 0, 2, 1, 3)
	k := split("wk", 2, 0, 2, 3, 1)
	v := split("wv", 3, 0, 2, 1, 3)
	b.Node("Shape", []string{q}) // read by nothing
	hd := b.Node("Slice", []string{b.Node("Shape", []string{q}), ints("m1", -1), ints("big", 1<<62)})
	scale := b.Node("Sqrt", []string{b.Node("Cast", []string{hd}, build.Int("to", 1))})
	sc := b.Node("Div", []string{b.Node("MatMul", []string{q, k}), scale})
	ctx := b.Node("MatMul", []string{b.Node("Softmax", []string{sc}, build.Int("axis", -1)), v})
	ctx = b.Node("Transpose", []string{ctx}, build.Ints("perm", 0, 2, 1, 3))
	ctx = b.Node("Reshape", []string{ctx, ints("o_shape", 0, 0, h*d)})
	y := b.Node("MatMul", []string{ctx, initRand(b, "wo", 4, h*d, e)})
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
	p := oracleBuilt(t, m, prune.Options{}, g, map[int]bool{1: true})
	wantConst(t, p, "wq", []int64{e, (h - 1) * d}, nil)
	hdAn, err := prune.Analyze(m, prune.Options{HeadDim: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, grp := range hdAn.Groups {
		if slices.ContainsFunc(grp.Members, func(m prune.Member) bool { return m.Tensor == "wq" }) {
			if !grp.Frozen || !strings.Contains(grp.Reason, "Shape") {
				t.Errorf("head_dim of Q: frozen %v (%q), want frozen by the Shape the scale reads", grp.Frozen, grp.Reason)
			}
		}
	}
}
