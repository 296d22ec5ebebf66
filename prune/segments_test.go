package prune_test

import (
	"testing"

	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestSegmentRounding: in the DenseNet fixture the stem's channels and
// each layer's growth channels form one group that later layers read in
// growing prefixes, so rounding the group's total kept count left odd
// widths in every Concat and convolution. Each source is a segment of
// its own, and with RoundTo every convolution's channel counts and every
// Concat input and output stay multiples of RoundTo (or their dense
// sizes) after pruning half the MACs.
func TestSegmentRounding(t *testing.T) {
	var f fixture
	for _, x := range cnnFixtures(t) {
		if x.Name == "densenet_g8_op13" {
			f = x
		}
	}
	if f.Name == "" {
		t.Fatal("no densenet_g8_op13 fixture")
	}
	m := loadFixture(t, f)
	const r = 4
	an, p := plan(t, m, prune.Settings{Criterion: "magnitude", Target: "macs", Ratio: 0.5, MaxLayerRatio: 0.8, RoundTo: r})
	multi := 0
	for _, g := range an.Prunable() {
		if n, _ := g.Segments(); n > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("no group has more than one segment; want the dense blocks' groups split by source")
	}
	dense := loadFixture(t, f)
	if err := an.Apply(p.Keep()); err != nil {
		t.Fatal(err)
	}
	pruned := prunetest.Clone(t, m)
	denseW := map[string][]int64{}
	for _, n := range dense.Graph.Nodes {
		if w, ok := dense.Graph.Constant(n.Input(1)); ok && n.Op() == "Conv" {
			denseW[n.Name()] = w.Dims
		}
	}
	changed := 0
	for _, n := range pruned.Graph.Nodes {
		if n.Op() != "Conv" {
			continue
		}
		w, _ := pruned.Graph.Constant(n.Input(1))
		d0 := denseW[n.Name()]
		for ax := range 2 {
			if w.Dims[ax] != d0[ax] {
				changed++
				if w.Dims[ax]%r != 0 {
					t.Errorf("%s: weight axis %d has %d channels (dense %d), not a multiple of %d", n.Name(), ax, w.Dims[ax], d0[ax], r)
				}
			}
		}
	}
	if changed == 0 {
		t.Fatal("no convolution changed")
	}
	if got := p.After.MACs; float64(got) > 0.52*float64(p.Before.MACs) {
		t.Errorf("MACs %d of %d, want about half", got, p.Before.MACs)
	}
}
