package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// TestContribGroupsAndAttributes: on onnxruntime-fused layers,
// `inspect --groups` lists the heads, KV groups and MLP groups as
// prunable, and `prune` rewrites the head-count attributes:
// GroupQueryAttention's num_heads/kv_num_heads under --kv-groups and
// --heads, RotaryEmbedding's num_heads, MatMulNBits' N and K.
func TestContribGroupsAndAttributes(t *testing.T) {
	const dir = "../../fixtures/contrib/models/"
	text, code := runCLI(t, "inspect", dir+"llama_layer_gqa_nbits.onnx", "--groups")
	if code != exitOK {
		t.Fatalf("inspect: exit %d\n%s", code, text)
	}
	for _, re := range []string{`(?m)^\d+\s+heads\s+q_proj\s+2\s+prunable`, `(?m)^\d+\s+mlp\s+gate_proj\s+4\s+prunable`,
		`(?m)^\d+\s+kv-groups\s+q_proj\s+2\s+prunable`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("inspect --groups has no line %s:\n%s", re, text)
		}
	}
	out := t.TempDir()
	attrs := func(path, op string, names ...string) []int64 {
		t.Helper()
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range m.Graph.Nodes {
			if n.Op() == op {
				var v []int64
				for _, a := range names {
					v = append(v, n.IntAttr(a, -1))
				}
				return v
			}
		}
		t.Fatalf("%s: no %s", path, op)
		return nil
	}
	for _, c := range []struct {
		model, flag, op string
		attrs           []string
		want            []int64
	}{
		{"llama_layer_gqa_packed", "--kv-groups", "GroupQueryAttention", []string{"num_heads", "kv_num_heads"}, []int64{2, 1}},
		{"llama_layer_gqa_packed", "--heads", "GroupQueryAttention", []string{"num_heads", "kv_num_heads"}, []int64{2, 2}},
		{"llama_layer_gqa_rope", "--kv-groups", "RotaryEmbedding", []string{"num_heads"}, []int64{2}},
		{"llama_layer_gqa_nbits", "--heads", "MatMulNBits", []string{"N", "K"}, []int64{32, 64}},
	} {
		p := filepath.Join(out, c.model+c.flag+".onnx")
		if text, code := runCLI(t, "prune", dir+c.model+".onnx", "-o", p, c.flag, "0.5"); code != exitOK {
			t.Fatalf("%s %s: exit %d\n%s", c.model, c.flag, code, text)
		}
		got := attrs(p, c.op, c.attrs...)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %s: %s %v = %v, want %v", c.model, c.flag, c.op, c.attrs, got, c.want)
				break
			}
		}
	}
}
