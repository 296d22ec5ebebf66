package prune_test

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestSharedFillsUnshared: the TorchScript BERT export reads one all-zero
// bias (m.embeddings.LayerNorm.bias) through Identity aliases as the
// embedding LayerNorm's beta and as every Q/K/V/output bias. Each reader
// is its own member (copy), so every layer's heads and MLP are separate
// prunable groups; pruning the heads of one layer gives its biases private
// sliced copies, the other readers keep the original, and the recount of
// the written model is the plan's cost.
func TestSharedFillsUnshared(t *testing.T) {
	var f fixture
	for _, x := range transformerFixtures(t) {
		if x.Name == "hf_bert_tiny" {
			f = x
		}
	}
	m := loadFixture(t, f)
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const shared = "m.embeddings.LayerNorm.bias"
	var heads []*prune.Group
	for _, g := range an.Prunable() {
		if g.Kind == prune.KindHeads {
			heads = append(heads, g)
		}
	}
	if len(heads) != 2 {
		t.Fatalf("%d prunable heads groups, want one per layer (2)", len(heads))
	}
	readers := 0
	for _, g := range an.Groups {
		for _, mem := range g.Members {
			if mem.Tensor == shared {
				readers++
				if !mem.Copy {
					t.Errorf("group %d: member %s of %s not marked copy", g.ID, mem.Tensor, mem.Node)
				}
			}
		}
	}
	if readers < 4 {
		t.Errorf("%d members read %s, want the LayerNorm beta and the attention biases", readers, shared)
	}
	g := heads[0]
	before := an.Cost()
	keep := map[int][]int{g.ID: {0, 2, 3}}
	want := an.CostAfter(keep)
	if err := an.Apply(keep); err != nil {
		t.Fatal(err)
	}
	pruned := prunetest.Clone(t, m)
	c0, err := graph.Count(loadFixture(t, f))
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.Count(pruned)
	if err != nil {
		t.Fatal(err)
	}
	if c0.Params-c.Params != before.Params-want.Params || want.Params >= before.Params {
		t.Errorf("graph.Count sees params −%d, the plan's cost −%d", c0.Params-c.Params, before.Params-want.Params)
	}
	orig, ok := pruned.Graph.Constant(shared)
	if !ok || !slices.Equal(orig.Dims, []int64{128}) {
		t.Fatalf("the shared fill is gone or resized (%v), yet other readers need it", ok)
	}
	maxRelDiff(t, run(t, pruned, inputsOf(t, f)), run(t, loadFixture(t, f), inputsOf(t, f))) // shapes
}

// TestRealTieStaysTied: a weight with distinct values read by two
// MatMuls is a real tie: one group, each member naming the other reader.
func TestRealTieStaysTied(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, -1, 6)
	w := initRand(b, "w", 1, 6, 6)
	h := b.Node("MatMul", []string{x, w})
	h = b.Node("Relu", []string{h})
	y := b.Node("MatMul", []string{h, w})
	b.Output(y, f32, -1, 6)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range an.Groups {
		for _, mem := range g.Members {
			if mem.Tensor == "w" && (mem.Copy || len(mem.SharedWith) != 1) {
				t.Errorf("member w of %s: copy %v, shared with %v; want a tie with the other MatMul", mem.Node, mem.Copy, mem.SharedWith)
			}
		}
	}
}
