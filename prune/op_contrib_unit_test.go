package prune_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

const ms = "com.microsoft"

// msNode appends a com.microsoft node.
func msNode(b *build.Builder, op string, inputs []string, n int, attrs ...*onnx.AttributeProto) []string {
	outs := b.NodeN(op, inputs, n, attrs...)
	d := ms
	b.Last().Domain = &d
	return outs
}

// bytesTensor is a uint8 initializer of deterministic bytes.
func bytesTensor(b *build.Builder, name string, seed int, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte((i*37 + seed*11 + i*i) % 251)
	}
	return b.InitTensor(graph.NewTensor(name, onnx.TensorProto_UINT8, dims, raw))
}

func positive(n int64, seed int) []float32 {
	v := weights(n, seed)
	for i := range v {
		v[i] = 0.01 + 0.02*(v[i]+1)
	}
	return v
}

// nbitsMLP builds x[B,4,8] → MatMul [8,K] → Relu → MatMulNBits (K
// inputs in blocks of 16, N 8) → y, in the layouts of MatMulNBits:
// flattened or 2-D scales and zero points, packed zero points or none.
func nbitsMLP(t *testing.T, k, bits int64, scales2D bool, zp string, accuracy ...int64) (*graph.Model, map[string]tensor.Dense) {
	t.Helper()
	const n, block = 8, 16
	blocks := (k + block - 1) / block
	b := build.New(17).Import(ms, 1)
	x := b.Input("x", f32, -1, 4, 8)
	h := b.Node("MatMul", []string{x, initRand(b, "fc1", 1, 8, k)})
	h = b.Node("Relu", []string{h})
	sdims := []int64{n * blocks}
	if scales2D {
		sdims = []int64{n, blocks}
	}
	ins := []string{h, bytesTensor(b, "B", 2, n, blocks, block*bits/8), b.Init("scales", sdims, positive(n*blocks, 3))}
	zrow := (blocks*bits + 7) / 8
	switch zp {
	case "packed":
		zdims := []int64{n * zrow}
		if scales2D {
			zdims = []int64{n, zrow}
		}
		ins = append(ins, bytesTensor(b, "zp", 4, zdims...))
	case "float":
		ins = append(ins, b.Init("zp", sdims, weights(n*blocks, 5)))
	}
	attrs := []*onnx.AttributeProto{build.Int("K", k), build.Int("N", n), build.Int("bits", bits), build.Int("block_size", block)}
	if len(accuracy) > 0 {
		attrs = append(attrs, build.Int("accuracy_level", accuracy[0]))
	}
	y := msNode(b, "MatMulNBits", ins, 1, attrs...)[0]
	b.Output(y, f32, -1, 4, n)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.New([]int64{2, 4, 8}, weights(64, 9))
	if err != nil {
		t.Fatal(err)
	}
	return m, map[string]tensor.Dense{"x": in}
}

// TestMatMulNBitsBlocks: an MLP whose down projection is a MatMulNBits
// prunes by whole quantization blocks in every layout (4-, 2- and 8-bit,
// an odd block count and a partial last block, flattened and 2-D scales,
// packed, float and absent zero points): the written model runs with the
// dense output shape and equals the dense model with the removed blocks'
// scales (and the fc1 columns feeding them) zeroed.
func TestMatMulNBitsBlocks(t *testing.T) {
	s := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
		KindRatios: map[string]float64{prune.KindMLP: 0.34}}
	for _, c := range []struct {
		k, bits  int64
		scales2D bool
		zp       string
		accuracy int64
	}{
		{48, 4, false, "packed", 0}, {48, 4, true, "packed", 0}, {40, 4, false, "packed", 0}, {48, 2, false, "packed", 0},
		{48, 8, false, "packed", 0}, {48, 4, false, "float", 0}, {48, 4, true, "", 0},
		// int8 compute: the activations are quantized per block of K,
		// and whole blocks leave the other blocks' quantization as it was.
		{48, 4, false, "packed", 4},
	} {
		t.Run(fmt.Sprintf("K%d-bits%d-2d%v-zp%s-acc%d", c.k, c.bits, c.scales2D, c.zp, c.accuracy), func(t *testing.T) {
			m, in := nbitsMLP(t, c.k, c.bits, c.scales2D, c.zp, c.accuracy)
			an, err := prune.Analyze(prunetest.Clone(t, m), prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var mlp *prune.Group
			for _, g := range an.Groups {
				if g.Kind == prune.KindMLP {
					mlp = g
				}
			}
			if blocks := int((c.k + 15) / 16); mlp == nil || mlp.Frozen || mlp.Size != blocks {
				t.Fatalf("want a prunable MLP group of %d blocks, got %+v", blocks, mlp)
			}
			r := prunetest.DeadOracle(t, m, in, prune.Options{}, s)
			t.Log(r)
		})
	}
	// A partial last block (K 40: blocks of 16, 16, 8) kept behind a
	// removed full block: every block removed in turn, by random scores.
	removed := map[int]bool{}
	for seed := uint64(0); seed < 12 && len(removed) < 3; seed++ {
		m, in := nbitsMLP(t, 40, 4, false, "packed")
		rs := s
		rs.Criterion, rs.Seed = "random", seed
		r := prunetest.DeadOracle(t, m, in, prune.Options{}, rs)
		for gid, kept := range r.Plan.Keep() {
			for i := range 3 {
				if !slices.Contains(kept, i) && r.Plan.Groups[gid].Size == 3 {
					removed[i] = true
				}
			}
		}
	}
	if len(removed) != 3 {
		t.Errorf("random seeds removed blocks %v, want each of the three once", removed)
	}
}

// namedGroup returns the group first produced by node.
func namedGroup(t *testing.T, m *graph.Model, node string) []*prune.Group {
	t.Helper()
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range an.Groups {
		if g.Name == node {
			return []*prune.Group{g}
		}
	}
	t.Fatalf("no group from %s", node)
	return nil
}

// kindGroups analyses m and returns its groups of a kind.
func kindGroups(t *testing.T, m *graph.Model, opts prune.Options, kind string) []*prune.Group {
	t.Helper()
	an, err := prune.Analyze(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []*prune.Group
	for _, g := range an.Groups {
		if g.Kind == kind {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s group", kind)
	}
	return out
}

func wantFrozen(t *testing.T, gs []*prune.Group, why ...string) {
	t.Helper()
	for _, g := range gs {
		if !g.Frozen {
			t.Errorf("group %s (%s) is prunable", g.Name, g.Kind)
			continue
		}
		for _, w := range why {
			if !strings.Contains(g.Reason, w) {
				t.Errorf("group %s frozen for %q, want it to say %q", g.Name, g.Reason, w)
			}
		}
	}
}

// gqaGraph: x → Q/K/V MatMuls → GroupQueryAttention (4 heads, 2 KV
// heads, head 4) → MatMul, with a past KV cache as graph inputs when past.
func gqaGraph(t *testing.T, past bool) *graph.Model { return gqaGraphHead(t, past, 4, 3) }

// gqaGraphHead is gqaGraph with heads of d channels (onnxruntime's
// kernel runs multiples of 8) and seq new positions after a past cache
// of 5 (seq 1 is a decoding step, which onnxruntime runs).
func gqaGraphHead(t *testing.T, past bool, d, seq int64) *graph.Model {
	t.Helper()
	b := build.New(17).Import(ms, 1)
	x := b.Input("x", f32, 1, seq, 8)
	q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, 8, 4*d)})
	k := b.Node("MatMul", []string{x, initRand(b, "wk", 2, 8, 2*d)})
	v := b.Node("MatMul", []string{x, initRand(b, "wv", 3, 8, 2*d)})
	pk, pv := "", ""
	if past {
		pk, pv = b.Input("past_key", f32, 1, 2, 5, d), b.Input("past_value", f32, 1, 2, 5, d)
	}
	seqlens := b.InitTensor(graph.NewTensor("seqlens", onnx.TensorProto_INT32, []int64{1}, []byte{byte(4 + seq), 0, 0, 0}))
	total := b.InitTensor(graph.NewTensor("total", onnx.TensorProto_INT32, nil, []byte{byte(5 + seq), 0, 0, 0}))
	outs := 1
	if past {
		outs = 3 // present key and value, which the kernel attends over
	}
	att := msNode(b, "GroupQueryAttention", []string{q, k, v, pk, pv, seqlens, total}, outs,
		build.Int("num_heads", 4), build.Int("kv_num_heads", 2))
	y := b.Node("MatMul", []string{att[0], initRand(b, "wo", 4, 4*d, 8)})
	b.Output(y, f32, 1, seq, 8)
	if past {
		b.Output(att[1], f32, 1, 2, 5+seq, d)
		b.Output(att[2], f32, 1, 2, 5+seq, d)
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestContribFreezes: what pare cannot rewrite freezes with a reason
// naming the node: a KV cache under --kv-groups with --keep-interface
// (the cache has the KV head axis) while query heads inside KV groups
// still prune; a past
// state of MultiHeadAttention; MultiHeadAttention's packed QKV form;
// MatMulNBits input channels under g_idx.
func TestContribFreezes(t *testing.T) {
	t.Run("gqa-past-kv-groups", func(t *testing.T) {
		// The cache is a graph input: KV groups prune with it unless the
		// interface is kept.
		for _, g := range kindGroups(t, gqaGraph(t, true), prune.Options{KVGroups: true}, prune.KindKVGroups) {
			if g.Frozen || g.Size != 2 {
				t.Errorf("KV groups with a past cache as graph input: %+v, want 2 prunable", g)
			}
		}
		m := gqaGraph(t, true)
		wantFrozen(t, kindGroups(t, m, prune.Options{KVGroups: true, KeepInterface: true}, prune.KindKVGroups), "GroupQueryAttention_4", "past state past_key", "--keep-interface")
		for _, g := range kindGroups(t, gqaGraph(t, true), prune.Options{}, prune.KindHeads) {
			if g.Frozen || g.Size != 2 {
				t.Errorf("query slots with a KV cache: %+v, want 2 prunable", g)
			}
		}
	})
	t.Run("mha-past", func(t *testing.T) {
		b := build.New(17).Import(ms, 1)
		x := b.Input("x", f32, 1, 3, 8)
		q := b.Node("MatMul", []string{x, initRand(b, "wq", 1, 8, 8)})
		k := b.Node("MatMul", []string{x, initRand(b, "wk", 2, 8, 8)})
		v := b.Node("MatMul", []string{x, initRand(b, "wv", 3, 8, 8)})
		pk := b.Input("past_key", f32, 1, 2, 5, 4)
		ctx := msNode(b, "MultiHeadAttention", []string{q, k, v, "", "", "", pk, pk}, 1, build.Int("num_heads", 2))[0]
		y := b.Node("MatMul", []string{ctx, initRand(b, "wo", 4, 8, 8)})
		b.Output(y, f32, 1, 3, 8)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		wantFrozen(t, kindGroups(t, m, prune.Options{}, prune.KindHeads), "MultiHeadAttention_", "past state")
	})
	t.Run("mha-packed-qkv", func(t *testing.T) {
		b := build.New(17).Import(ms, 1)
		x := b.Input("x", f32, 1, 3, 8)
		qkv := b.Node("MatMul", []string{x, initRand(b, "wqkv", 1, 8, 24)})
		qkv = b.Node("Reshape", []string{qkv, b.InitInts("shape", []int64{5}, []int64{1, 3, 2, 3, 4})})
		ctx := msNode(b, "MultiHeadAttention", []string{qkv}, 1, build.Int("num_heads", 2))[0]
		y := b.Node("MatMul", []string{ctx, initRand(b, "wo", 4, 8, 8)})
		b.Output(y, f32, 1, 3, 8)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		wantFrozen(t, namedGroup(t, m, "MatMul_1"), "MultiHeadAttention_", "packed")
	})
	t.Run("nbits-g_idx", func(t *testing.T) {
		m, _ := nbitsMLP(t, 48, 4, false, "packed")
		for _, n := range m.Graph.Nodes {
			if n.Op() == "MatMulNBits" {
				gidx := "g_idx"
				m.Graph.Proto.Initializer = append(m.Graph.Proto.Initializer,
					graph.NewTensor(gidx, onnx.TensorProto_INT32, []int64{48}, make([]byte, 4*48)))
				n.Proto.Input = append(n.Proto.Input, gidx)
			}
		}
		if err := m.Graph.Reindex(); err != nil {
			t.Fatal(err)
		}
		wantFrozen(t, namedGroup(t, m, "MatMul_1"), "MatMulNBits_3", "g_idx")
	})
}
