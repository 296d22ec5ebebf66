package prune_test

import (
	"fmt"
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
