package pruner

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// On the trained RegNetY-style fixture, AlignBlocks reorders the
// channels on both sides of every grouped Conv so that, in every block,
// OBS cost falls with the offset; the model computes what it did; and
// the one-step OBS path at 50% of the parameters removed lands closer
// to the dense model, and more accurate, than on the file's own order.
func TestAlignBlocksOrdersGroupedConvChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("two OBS prunes with reconstruction: run without -short")
	}
	const model = "models/fmnist_regnet_op17.onnx"
	calibFile := fixtures + "data/fmnist_calib_x.npy"
	dense, err := graph.Load(fixtures + model)
	if err != nil {
		t.Fatal(err)
	}
	denseOut := testOutputs(t, dense)
	cfg := Config{
		Settings: prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.5, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
		Calib:    calibFile, Reconstruct: true,
	}

	m, err := graph.Load(fixtures + model)
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	note, err := AlignBlocks(context.Background(), m, an, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "channels reordered") {
		t.Fatalf("note %q: want the grouped Convs' channels reordered", note)
	}
	t.Log(note)
	if d := CompareOutputs(denseOut, testOutputs(t, m), 10).RelMSE; d > AlignTolerance {
		t.Fatalf("relative output error %.3g on the test images after reordering, want none", d)
	}

	// Every block's costs, measured again on the reordered model, fall
	// with the offset.
	an, err = prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open(calibFile, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	obs, err := importance.NewOBS(context.Background(), m, an, importance.Data{Src: src}, 0)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, grp := range an.Groups {
		g, _ := an.Blocks(grp)
		if g == 0 {
			continue
		}
		cost, ok, err := obs.BlockCosts(m.Graph, grp, g)
		if err != nil || !ok {
			t.Fatalf("group %d (%s): costs %v, %v", grp.ID, grp.Name, ok, err)
		}
		for j, c := range cost {
			for i := 1; i < len(c); i++ {
				if c[i] > c[i-1]*(1+1e-9) {
					t.Errorf("group %d (%s) block %d: offset %d costs %.4g, more than offset %d's %.4g", grp.ID, grp.Name, j, i, c[i], i-1, c[i-1])
				}
			}
		}
		checked++
	}
	obs.Release()
	if checked != 8 {
		t.Errorf("%d groups in blocks, want 8 (both sides of the 4 grouped Convs)", checked)
	}

	run := func(m *graph.Model) (acc, relErr float64) {
		if _, err := RunSteps(context.Background(), m, prune.Options{}, cfg, 1); err != nil {
			t.Fatal(err)
		}
		return testAccuracy(t, m), CompareOutputs(denseOut, testOutputs(t, m), 10).RelMSE
	}
	asGiven, err := graph.Load(fixtures + model)
	if err != nil {
		t.Fatal(err)
	}
	baseAcc, baseErr := run(asGiven)
	acc, relErr := run(m)
	t.Logf("one-step obs + reconstruct at 50%%: file order accuracy %.3f, relative output error %.4f; reordered %.3f, %.4f", baseAcc, baseErr, acc, relErr)
	if relErr >= baseErr || acc <= baseAcc {
		t.Errorf("reordered: accuracy %.3f, relative output error %.4f; want both better than the file order's %.3f, %.4f", acc, relErr, baseAcc, baseErr)
	}
}

// inverseOrders undoes PermuteBlocks to the byte: AlignBlocks puts a
// reordering back that way when the outputs moved.
func TestInverseOrdersRestoreTheFile(t *testing.T) {
	m, err := graph.Load(fixtures + "models/fmnist_regnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 9))
	var moved []*prune.Group
	orders := map[int][][]int{}
	for _, grp := range an.Groups {
		g, _ := an.Blocks(grp)
		if g == 0 {
			continue
		}
		from := make([][]int, g)
		for j := range from {
			from[j] = r.Perm(grp.Size)
		}
		if err := an.PermuteBlocks(grp, from); err != nil {
			t.Fatal(err)
		}
		moved, orders[grp.ID] = append(moved, grp), from
	}
	if len(moved) == 0 {
		t.Fatal("no group in blocks")
	}
	if got, err := m.Marshal(); err != nil || bytes.Equal(got, want) {
		t.Fatalf("reordering left the file as it was (%v)", err)
	}
	for _, grp := range moved {
		if err := an.PermuteBlocks(grp, inverseOrders(orders[grp.ID])); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := m.Marshal(); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the inverse orders did not restore the file byte for byte (%v)", err)
	}
}
