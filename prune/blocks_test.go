package prune_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
)

// TestPermuteBlocksKeepsOutputs: the grouped Conv's input and output
// groups repeat in its 4 blocks; reordering the channels inside every
// block, each block its own way, leaves what onnxruntime computes
// unchanged (the grouped weight's input axis moves per group of rows),
// while the residual group past it has no blocks.
func TestPermuteBlocksKeepsOutputs(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m, in := resnextBlock(t)
			want := prunetest.Run(t, m, in)
			an, err := prune.Analyze(m, prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(seed, 7))
			blocked := 0
			for _, grp := range an.Groups {
				g, why := an.Blocks(grp)
				if g == 0 {
					t.Logf("group %d (%s): %s", grp.ID, grp.Name, why)
					continue
				}
				if g != 4 {
					t.Fatalf("group %d (%s): %d blocks, want the grouped Conv's 4", grp.ID, grp.Name, g)
				}
				blocked++
				from := make([][]int, g)
				for j := range from {
					from[j] = r.Perm(grp.Size)
				}
				if err := an.PermuteBlocks(grp, from); err != nil {
					t.Fatal(err)
				}
			}
			if blocked != 2 {
				t.Fatalf("%d groups in blocks, want the grouped Conv's input and output channels", blocked)
			}
			if d := prunetest.MaxRelDiff(t, want, prunetest.Run(t, m, in)); d > 1e-5 {
				t.Errorf("max relative difference %.3g after reordering inside blocks, want none", d)
			}
		})
	}
}

// TestPermuteBlocksRefusesOtherGroups: a group without blocks is not
// reordered, with the reason named.
func TestPermuteBlocksRefusesOtherGroups(t *testing.T) {
	m, _ := resnextBlock(t)
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, grp := range an.Groups {
		if g, _ := an.Blocks(grp); g == 0 && !grp.Frozen {
			if err := an.PermuteBlocks(grp, [][]int{{0}}); err == nil {
				t.Errorf("group %d (%s) reordered without blocks", grp.ID, grp.Name)
			}
			return
		}
	}
	t.Fatal("no prunable group without blocks in the ResNeXt block")
}
