package prune_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// resnextBlock builds a ResNeXt bottleneck: 1×1 Conv to 8 channels, a
// 3×3 Conv of 4 groups (2 in, 3 out each), ReLU, 1×1 Conv back to 6,
// added to a 1×1 projection of the input; then a head.
func resnextBlock(t *testing.T) (*graph.Model, map[string]tensor.Dense) {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", f32, 2, 3, 6, 6)
	a := b.Node("Conv", []string{x, initRand(b, "reduce", 1, 8, 3, 1, 1), initRand(b, "reduce_b", 2, 8)})
	a = b.Node("Relu", []string{a})
	g := b.Node("Conv", []string{a, initRand(b, "grouped", 3, 12, 2, 3, 3), initRand(b, "grouped_b", 4, 12)},
		build.Int("group", 4), build.Ints("pads", 1, 1, 1, 1))
	g = b.Node("Relu", []string{g})
	e := b.Node("Conv", []string{g, initRand(b, "expand", 5, 6, 12, 1, 1)})
	s := b.Node("Conv", []string{x, initRand(b, "proj", 6, 6, 3, 1, 1)})
	y := b.Node("Relu", []string{b.Node("Add", []string{e, s})})
	y = b.Node("Conv", []string{y, initRand(b, "head", 7, 5, 6, 1, 1)})
	b.Output(y, f32, 2, 5, 6, 6)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.New([]int64{2, 3, 6, 6}, weights(2*3*6*6, 8))
	if err != nil {
		t.Fatal(err)
	}
	return m, map[string]tensor.Dense{"x": in}
}

// TestGroupedConvDeadOracle: pruning through a grouped Conv (its input
// offsets, its outputs, and the residual group past it) writes a model
// that onnxruntime runs and that equals the dense model with the
// removed channels zeroed, for several random selections.
func TestGroupedConvDeadOracle(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m, in := resnextBlock(t)
			s := prune.Settings{Criterion: "random", Seed: seed, Scope: "global", Target: "channels", Ratio: 0.4, MaxLayerRatio: 0.7}
			r := prunetest.DeadOracle(t, m, in, prune.Options{}, s)
			if r.RemovedGroups < 2 {
				t.Errorf("removed channels from %d groups, want the grouped Conv's input and output groups at least", r.RemovedGroups)
			}
			t.Log(r)
		})
	}
}

// TestGroupedConvWholeGroupsDeadOracle: with Options.ConvGroups an index
// of the grouped Conv is a whole group (its 2 input channels, 3 filters
// and their outputs): the pruned model runs in onnxruntime and equals
// the dense model with the removed groups zeroed, its `group` falls by
// the groups removed and every group keeps its width.
func TestGroupedConvWholeGroupsDeadOracle(t *testing.T) {
	opts := prune.Options{ConvGroups: true}
	fewer := 0
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m, in := resnextBlock(t)
			an, err := prune.Analyze(prunetest.Clone(t, m), opts)
			if err != nil {
				t.Fatal(err)
			}
			var grouped *prune.Group
			for _, grp := range an.Groups {
				if grp.Name == "Conv_0" || slices.ContainsFunc(grp.Members, func(mem prune.Member) bool { return mem.Tensor == "grouped" }) {
					grouped = grp
				}
			}
			if grouped == nil || grouped.Size != 4 || grouped.Frozen {
				t.Fatalf("the grouped Conv's group: %+v, want 4 prunable indices (its groups)", grouped)
			}
			s := prune.Settings{Criterion: "random", Seed: seed, Scope: "global", Target: "channels", Ratio: 0.4, MaxLayerRatio: 0.7}
			r := prunetest.DeadOracle(t, m, in, opts, s)
			pruned := prunetest.Clone(t, m)
			ap, err := prune.Analyze(pruned, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := ap.ApplyPlan(r.Plan); err != nil {
				t.Fatal(err)
			}
			kept := len(r.Plan.Keep()[grouped.ID])
			for _, n := range pruned.Graph.Nodes {
				if n.Op() != "Conv" || n.Input(1) != "grouped" {
					continue
				}
				w, _ := pruned.Graph.Constant("grouped")
				if g := n.IntAttr("group", 1); g != int64(kept) || w.Dims[0] != int64(3*kept) || w.Dims[1] != 2 {
					t.Errorf("grouped Conv: group %d, W %v; want %d groups of 2 inputs and 3 outputs", g, w.Dims, kept)
				}
			}
			t.Logf("%v; %d of 4 groups kept", r, kept)
			if kept < 4 {
				fewer++
			}
		})
	}
	if fewer == 0 {
		t.Error("no selection removed a group of the grouped Conv: the test proves nothing about it")
	}
}

// OffsetConvs names the grouped Convs whose channels go by offset, the
// ones whole groups would prune otherwise: the ResNeXt block's grouped
// Conv, and none under ConvGroups or in a model with only depthwise and
// ordinary Convs.
func TestOffsetConvs(t *testing.T) {
	m, _ := resnextBlock(t)
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := an.OffsetConvs(); len(got) != 1 {
		t.Errorf("offset convs %v, want the grouped Conv", got)
	}
	an, err = prune.Analyze(m, prune.Options{ConvGroups: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := an.OffsetConvs(); len(got) != 0 {
		t.Errorf("offset convs %v under ConvGroups, want none", got)
	}
	mobile, err := graph.Load("../fixtures/models/fmnist_mobilenet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if an, err = prune.Analyze(mobile, prune.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := an.OffsetConvs(); len(got) != 0 {
		t.Errorf("offset convs %v in a model of depthwise and ordinary Convs, want none", got)
	}
}
