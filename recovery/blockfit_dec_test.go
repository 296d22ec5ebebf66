package recovery

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
)

// A decoder is cut from its token ids: the first block reads the ids
// (the embedding with the first attention), then each attention and
// each MLP is a block ending at its residual Add, and the last MLP
// holds the final norm and the LM head (a head alone would be a linear
// map of a fixed input). The values the sequence length alone
// decides (the rotary cos and sin tables, the causal mask) are live
// across every cut: they are baked from a run instead of stopping the
// cuts.
func TestCutBlocksDecoder(t *testing.T) {
	m, err := graph.Load("../fixtures/models/llama_char_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	in := m.Graph.Inputs[0].Name
	blocks, fixed, shapes, layers := cutFixture(t, m, []int64{8, 64})
	var ends []string
	for _, b := range blocks {
		ends = append(ends, b.end)
	}
	want := []string{"/layers.0/Add_output_0", "/layers.0/Add_1_output_0", "/layers.1/Add_output_0", "/layers.1/Add_1_output_0",
		"/layers.2/Add_output_0", "logits"}
	if !slices.Equal(ends, want) {
		t.Fatalf("block ends %q, want %q", ends, want)
	}
	if blocks[0].input != in {
		t.Errorf("the first block reads %s, want the token ids", blocks[0].input)
	}
	for i, b := range blocks {
		if b.input != in && (i == 0 || b.input != blocks[i-1].end) {
			t.Errorf("block %d reads %s, not the previous block's end", i, b.input)
		}
	}
	// The LM head's block is fitted by the KL of every position's
	// next-token distribution, the residual blocks by the MSE.
	for i, b := range blocks {
		b.outs = blockOuts(m.Graph, shapes, b, layers, func(l *calib.Layer) []int { return seqRows(l.Out()) })
		if got, want := blockLoss(m, shapes, b, true), map[bool]grad.Loss{true: grad.KL, false: grad.MSE}[i == len(blocks)-1]; got != want {
			t.Errorf("block %d ending at %s is fitted by the %v, want the %v", i, b.end, got, want)
		}
	}
	for _, v := range []string{"/rotary_emb/Cast_3_output_0", "/rotary_emb/Cast_4_output_0", "/Unsqueeze_4_output_0"} {
		if !slices.Contains(fixed, v) {
			t.Errorf("the size-decided value %s is not among the baked values %q", v, fixed)
		}
	}
	for _, v := range fixed {
		if s, ok := shapes.Of(v); !ok || !bakeable(s) {
			t.Errorf("%s is baked without a known float32 or int64 shape (%v)", v, s)
		}
	}
}
