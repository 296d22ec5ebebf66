package prune_test

import (
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// TestKVCacheKVGroups: one decoding step of a Llama exported by torch
// 1.13 with its key/value cache as graph inputs (past_k0 … [batch, 2,
// past, 16], appended by a Concat) and outputs (present_k0 …). Whole KV
// groups prune with the cache's head axis: the pruned model, fed the
// dense cache's kept heads, matches the dense model with the removed
// groups zeroed, and declares one KV head in every past and present.
// Query heads inside the groups (--heads) leave the cache whole. With
// --keep-interface the KV groups freeze, naming the cache.
func TestKVCacheKVGroups(t *testing.T) {
	path := filepath.Join(fixtureDir, "models", "llama_kv_nano_op17.onnx")
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.ReadNpz(filepath.Join(fixtureDir, "ref", "llama_kv_nano_op17.inputs.npz"))
	if err != nil {
		t.Fatal(err)
	}
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	kv := base
	kv.KVGroups = true
	kv.KindRatios = map[string]float64{prune.KindKVGroups: 0.5}
	r := prunetest.DeadOracle(t, m, in, prune.Options{KVGroups: true}, kv)
	if !r.Exact {
		t.Errorf("an inexact group was pruned: %v", r)
	}
	var cache []string
	for _, v := range slices.Concat(m.Graph.Inputs, m.Graph.Outputs) {
		if len(v.Name) > 4 && (v.Name[:4] == "past" || v.Name[:4] == "pres") {
			cache = append(cache, v.Name)
		}
	}
	if len(cache) != 8 {
		t.Fatalf("cache values %v, want 4 past and 4 present", cache)
	}
	for _, name := range cache {
		axes := r.Interface[name]
		if len(axes) != 1 || axes[0].Axis != 1 || axes[0].Of != 2 || len(axes[0].Keep) != 1 {
			t.Errorf("%s: kept positions %+v, want 1 of the 2 KV heads on axis 1", name, axes)
		}
	}
	if len(r.Interface) != len(cache) {
		t.Errorf("interface changes %v, want only the cache", r.Interface)
	}
	// Each KV group names the four cache values of its layer.
	for _, g := range kindGroups(t, prunetest.Clone(t, m), prune.Options{KVGroups: true}, prune.KindKVGroups) {
		if len(g.Interface) != 4 {
			t.Errorf("KV group %s: interface %v, want its layer's past and present keys and values", g.Name, g.Interface)
		}
	}
	t.Log(r)

	heads := base
	heads.KindRatios = map[string]float64{prune.KindHeads: 0.5}
	if r := prunetest.DeadOracle(t, m, in, prune.Options{}, heads); len(r.Interface) != 0 {
		t.Errorf("query heads changed the interface: %v", r.Interface)
	}

	an, err := prune.Analyze(prunetest.Clone(t, m), prune.Options{KVGroups: true, KeepInterface: true})
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, g := range an.Groups {
		if !strings.Contains(g.Name, "_proj") || strings.Contains(g.Name, "mlp") {
			continue
		}
		if !g.Frozen {
			t.Errorf("attention group %s prunable with the interface kept", g.Name)
		}
		if strings.Contains(g.Reason, "graph input past_") && strings.Contains(g.Reason, "--keep-interface") {
			named++
		}
	}
	if named == 0 {
		t.Error("no frozen attention group names the cache and --keep-interface")
	}
}

// TestGQAPastCacheKVGroups: one decoding step of GroupQueryAttention
// with its past key and value as graph inputs (onnxruntime-genai's
// decoders): whole KV groups prune with the cache and match the
// dead-group oracle in onnxruntime when fed the dense cache's kept heads.
func TestGQAPastCacheKVGroups(t *testing.T) {
	m := gqaGraphHead(t, true, 8, 1)
	in := randomFeed(t, 5, map[string][]int64{"x": {1, 1, 8}, "past_key": {1, 2, 5, 8}, "past_value": {1, 2, 5, 8}})
	// The oracle proves something only if the cache is read.
	other := randomFeed(t, 6, map[string][]int64{"past_key": {1, 2, 5, 8}, "past_value": {1, 2, 5, 8}})
	other["x"] = in["x"]
	if d := maxRelDiff(t, run(t, m, in), run(t, m, other)); d < 1e-3 {
		t.Fatalf("another past cache moved the output by %.3g: the cache is not read", d)
	}
	for keep := range 2 {
		s := prune.Settings{Criterion: "random", Seed: uint64(keep), Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
			KVGroups: true, KindRatios: map[string]float64{prune.KindKVGroups: 0.5}}
		r := prunetest.DeadOracle(t, m, in, prune.Options{KVGroups: true}, s)
		for _, name := range []string{"past_key", "past_value"} {
			if axes := r.Interface[name]; len(axes) != 1 || axes[0].Axis != 1 || len(axes[0].Keep) != 1 {
				t.Errorf("%s: kept positions %+v, want 1 of 2 KV heads", name, axes)
			}
		}
		t.Log(r, r.Interface)
	}
}

// randomFeed draws normal float32 inputs of the given shapes.
func randomFeed(t *testing.T, seed uint64, shapes map[string][]int64) map[string]tensor.Dense {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	in := map[string]tensor.Dense{}
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		n, err := tensor.NumElements(shapes[name])
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		if in[name], err = tensor.New(shapes[name], v); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// TestMHAPastCacheHeads: MultiHeadAttention's decoding step with its
// past key and value ([batch, heads, past, head]) as graph inputs and
// its presents as outputs: heads prune with the cache and match the
// dead-head oracle in onnxruntime. A past read as both key and value
// stays frozen (TestContribFreezes).
func TestMHAPastCacheHeads(t *testing.T) {
	b := build.New(17).Import(ms, 1)
	x := b.Input("x", f32, 1, 1, 8)
	q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, 8, 16)})
	k := b.Node("MatMul", []string{x, initRand(b, "wk", 2, 8, 16)})
	v := b.Node("MatMul", []string{x, initRand(b, "wv", 3, 8, 16)})
	pk, pv := b.Input("past_key", f32, 1, 2, 5, 8), b.Input("past_value", f32, 1, 2, 5, 8)
	att := msNode(b, "MultiHeadAttention", []string{q, k, v, "", "", "", pk, pv}, 3, build.Int("num_heads", 2))
	b.Output(b.Node("MatMul", []string{att[0], initRand(b, "wo", 4, 16, 8)}), f32, 1, 1, 8)
	b.Output(att[1], f32, 1, 2, 6, 8)
	b.Output(att[2], f32, 1, 2, 6, 8)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	headsWithPast(t, m, map[string][]int64{"x": {1, 1, 8}, "past_key": {1, 2, 5, 8}, "past_value": {1, 2, 5, 8}},
		1, "past_key", "past_value", att[1], att[2])
}

// TestAttentionPastCacheHeads: com.microsoft Attention (packed QKV, the
// onnxruntime transformer optimizer's GPT-2 form) with its packed past
// [2, batch, heads, past, head] as a graph input and its present as an
// output: heads prune with the cache and match the dead-head oracle.
func TestAttentionPastCacheHeads(t *testing.T) {
	b := build.New(17).Import(ms, 1)
	x := b.Input("x", f32, 1, 1, 8)
	past := b.Input("past", f32, 2, 1, 2, 5, 8)
	att := msNode(b, "Attention", []string{x, initRand(b, "wqkv", 1, 8, 48), initRand(b, "bqkv", 2, 48), "", past}, 2,
		build.Int("num_heads", 2), build.Int("unidirectional", 1))
	b.Output(b.Node("MatMul", []string{att[0], initRand(b, "wo", 3, 16, 8)}), f32, 1, 1, 8)
	b.Output(att[1], f32, 2, 1, 2, 6, 8)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	headsWithPast(t, m, map[string][]int64{"x": {1, 1, 8}, "past": {2, 1, 2, 5, 8}}, 2, "past", att[1])
}

// headsWithPast checks, on a one-layer attention model with a past cache
// (x and the pasts of shapes), that the cache is read (another past moves
// the first output), then prunes half the heads against the dead-head
// oracle: each of names must keep 1 of its 2 heads on axis.
func headsWithPast(t *testing.T, m *graph.Model, shapes map[string][]int64, axis int, names ...string) {
	t.Helper()
	in := randomFeed(t, 7, shapes)
	other := randomFeed(t, 8, shapes)
	other["x"] = in["x"]
	if d := maxRelDiff(t, run(t, m, in)[:1], run(t, m, other)[:1]); d < 1e-3 {
		t.Fatalf("another past moved the output by %.3g: the cache is not read", d)
	}
	s := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
		KindRatios: map[string]float64{prune.KindHeads: 0.5}}
	r := prunetest.DeadOracle(t, m, in, prune.Options{}, s)
	for _, name := range names {
		if axes := r.Interface[name]; len(axes) != 1 || axes[0].Axis != axis || len(axes[0].Keep) != 1 {
			t.Errorf("%s: kept positions %+v, want 1 of 2 heads on axis %d", name, axes, axis)
		}
	}
	t.Log(r, r.Interface)
}

// TestConcatWithGraphInputStaysFixed: a graph input concatenated with
// computed channels is not a cache unless the result is returned as an
// output: the channels freeze and the interface is left alone.
func TestConcatWithGraphInputStaysFixed(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, 1, 2, 8)
	extra := b.Input("extra", f32, 1, 3, 16)
	h := b.Node("MatMul", []string{x, initRand(b, "w1", 1, 8, 16)})
	c := b.Node("Concat", []string{h, extra}, build.Int("axis", 1))
	b.Output(b.Node("MatMul", []string{c, initRand(b, "w2", 2, 16, 4)}), f32, 1, 5, 4)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range an.Groups {
		if g.Size == 16 {
			found = true
			if !g.Frozen || !strings.Contains(g.Reason, "concatenated with a fixed tensor") {
				t.Errorf("group %s: frozen %v (%s), want frozen at the Concat", g.Name, g.Frozen, g.Reason)
			}
		}
	}
	if !found {
		t.Error("no group of w1's 16 channels")
	}
}

// TestKVCacheDecodeLoop: the KV-pruned decoding step runs as a decoder
// does, feeding its own present cache back as the next step's past
// (the cache's new sizes are consistent step after step), and over 8
// greedy steps from an empty cache its logits match the dense model's
// with the removed groups zeroed, run the same way with its full cache.
func TestKVCacheDecodeLoop(t *testing.T) {
	m, err := graph.Load(filepath.Join(fixtureDir, "models", "llama_kv_nano_op17.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
		KVGroups: true, KindRatios: map[string]float64{prune.KindKVGroups: 0.5}}
	opts := prune.Options{KVGroups: true}
	plan := prunetest.Select(t, m, opts, s)
	dead := prunetest.Clone(t, m)
	prunetest.KillPlan(t, dead, opts, plan.Keep())
	pruned := prunetest.Clone(t, m)
	ap, err := prune.Analyze(pruned, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.ApplyPlan(plan); err != nil {
		t.Fatal(err)
	}
	pruned = prunetest.Clone(t, pruned)
	want, wantTokens := decode(t, dead, 2, 8)
	got, gotTokens := decode(t, pruned, 1, 8)
	if !slices.Equal(gotTokens, wantTokens) {
		t.Errorf("greedy tokens %v, dead-group model %v", gotTokens, wantTokens)
	}
	if d := maxRelDiff(t, got, want); d > prunetest.Tolerance {
		t.Errorf("logits over the loop differ by %.3g relative", d)
	}
	t.Logf("tokens %v", gotTokens)
}

// decode runs steps greedy decoding steps of a llama_kv_nano-shaped
// model with kv KV heads from an empty cache (token 1 first), feeding
// each step's presents back as pasts; it returns every step's logits and
// the tokens.
func decode(t *testing.T, m *graph.Model, kv int64, steps int) ([]tensor.Dense, []int64) {
	t.Helper()
	past := map[string]tensor.Dense{}
	for _, name := range []string{"past_k0", "past_v0", "past_k1", "past_v1"} {
		z, err := tensor.Zeros(tensor.Float32, []int64{1, kv, 0, 16})
		if err != nil {
			t.Fatal(err)
		}
		past[name] = z
	}
	token := int64(1)
	var logits []tensor.Dense
	var tokens []int64
	for step := range int64(steps) {
		in := maps.Clone(past)
		var err error
		if in["input_ids"], err = tensor.New([]int64{1, 1}, []int64{token}); err != nil {
			t.Fatal(err)
		}
		mask := make([]int64, step+1)
		for i := range mask {
			mask[i] = 1
		}
		in["attention_mask"], _ = tensor.New([]int64{1, step + 1}, mask)
		in["position_ids"], _ = tensor.New([]int64{1, 1}, []int64{step})
		out := run(t, m, in)
		logits = append(logits, out[0])
		for i, name := range []string{"past_k0", "past_v0", "past_k1", "past_v1"} {
			if got := out[1+i].Shape; !slices.Equal(got, []int64{1, kv, step + 1, 16}) {
				t.Fatalf("step %d: present %d is %v", step, i, got)
			}
			past[name] = out[1+i]
		}
		v, err := out[0].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		token = int64(argmax(v))
		tokens = append(tokens, token)
	}
	return logits, tokens
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
