package prune_test

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
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

// TestUntrainedDenseNetPrunes: the untrained TorchScript export of a
// torchvision DenseNet (fixture densenet_g8_untrained) reads one zero
// tensor as each BatchNormalization's bias and, through an Identity, its
// running mean (and one unit tensor as scale and variance). Pruned at 50%
// of MACs, every BatchNormalization input is sliced to its channel count,
// so onnxruntime runs the model, and the outputs match the dense model
// with the removed channels zeroed (before, the aliased running
// statistics kept their full width and onnxruntime rejected the model).
func TestUntrainedDenseNetPrunes(t *testing.T) {
	var f fixture
	for _, x := range cnnFixtures(t) {
		if x.Name == "densenet_g8_untrained_op13" {
			f = x
		}
	}
	if f.Name == "" {
		t.Fatal("fixture densenet_g8_untrained_op13 not in the manifest")
	}
	m := loadFixture(t, f)
	twice := 0
	for _, n := range m.Graph.Nodes {
		if n.Op() != "BatchNormalization" {
			continue
		}
		seen := map[string]bool{}
		for _, name := range n.Proto.Input[1:] {
			name = throughIdentity(m.Graph, name)
			if seen[name] {
				twice++
				break
			}
			seen[name] = true
		}
	}
	if twice == 0 {
		t.Fatal("no BatchNormalization reads one constant on two inputs: the fixture no longer has the pattern")
	}
	s := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "macs", Ratio: 0.5, MaxLayerRatio: 0.8}
	res := prunetest.DeadOracle(t, m, inputsOf(t, f), prune.Options{}, s)
	t.Logf("%d BatchNormalizations read a constant twice; %s", twice, res)
	// DeadOracle ran the pruned model; check the slicing itself too.
	pruned := prunetest.Clone(t, m)
	an, err := prune.Analyze(pruned, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := an.ApplyPlan(res.Plan); err != nil {
		t.Fatal(err)
	}
	pruned = prunetest.Clone(t, pruned)
	for _, n := range pruned.Graph.Nodes {
		if n.Op() != "BatchNormalization" {
			continue
		}
		var dims [][]int64
		for _, name := range n.Proto.Input[1:] {
			c, ok := pruned.Graph.Constant(throughIdentity(pruned.Graph, name))
			if !ok {
				t.Fatalf("%s: input %s is not a constant", n.Name(), name)
			}
			dims = append(dims, c.Dims)
		}
		for _, d := range dims[1:] {
			if !slices.Equal(d, dims[0]) {
				t.Errorf("%s: scale, bias, mean and variance have dims %v", n.Name(), dims)
				break
			}
		}
	}
}

// throughIdentity follows Identity nodes back to the tensor they alias.
func throughIdentity(g *graph.Graph, name string) string {
	for p := g.Producer(name); p != nil && p.Op() == "Identity"; p = g.Producer(name) {
		name = p.Input(0)
	}
	return name
}

// TestFillReadTwiceByOneNode: an untrained TorchScript DenseNet export
// reads one all-zero tensor as a BatchNormalization's bias (directly) and
// as its running mean (through an Identity), and one all-one tensor as
// its scale and variance. Each input is its own reader: pruning the
// channels slices all four, and onnxruntime runs the result (before,
// the aliased mean and variance kept their full width).
func TestFillReadTwiceByOneNode(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, 1, 3, 6, 6)
	h := b.Node("Conv", []string{x, initRand(b, "w1", 1, 8, 3, 3, 3)}, build.Ints("pads", 1, 1, 1, 1))
	zero := b.Init("zero", []int64{8}, make([]float32, 8))
	one := b.Init("one", []int64{8}, slices.Repeat([]float32{1}, 8))
	mean := b.Node("Identity", []string{zero})
	variance := b.Node("Identity", []string{one})
	h = b.Node("BatchNormalization", []string{h, one, zero, mean, variance})
	h = b.Node("Relu", []string{h})
	y := b.Node("Conv", []string{h, initRand(b, "w2", 2, 4, 8, 1, 1)})
	b.Output(y, f32, 1, 4, 6, 6)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var g *prune.Group
	for _, c := range an.Prunable() {
		if c.Size == 8 {
			g = c
		}
	}
	if g == nil {
		t.Fatal("no prunable group of the 8 channels")
	}
	if err := an.Apply(map[int][]int{g.ID: {0, 2, 3, 5, 7}}); err != nil {
		t.Fatal(err)
	}
	pruned := prunetest.Clone(t, m)
	for _, n := range pruned.Graph.Nodes {
		if n.Op() != "BatchNormalization" {
			continue
		}
		for i := 1; i < 5; i++ {
			name := n.Input(i)
			for p := pruned.Graph.Producer(name); p != nil && p.Op() == "Identity"; p = pruned.Graph.Producer(name) {
				name = p.Input(0)
			}
			c, ok := pruned.Graph.Constant(name)
			if !ok || !slices.Equal(c.Dims, []int64{5}) {
				t.Errorf("BatchNormalization input %d (%s): dims %v, want [5]", i, name, c.GetDims())
			}
		}
	}
	in, err := tensor.Zeros(tensor.Float32, []int64{1, 3, 6, 6})
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, pruned, map[string]tensor.Dense{"x": in}); len(out) != 1 || !slices.Equal(out[0].Shape, []int64{1, 4, 6, 6}) {
		t.Errorf("pruned model gave %d outputs, want one of [1 4 6 6]", len(out))
	}
}
