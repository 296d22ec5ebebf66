package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pare-dev/pare/prune"
)

// headCriteria are the columns of the heads table: every criterion that
// scores heads and KV groups.
var headCriteria = []string{"magnitude", "random", "wanda", "flap", "obs", "module", "zeroth"}

// headsTable compares the criteria on the attention alone at fixed
// ratios (a kind alone cannot reach the parameter budgets of the main
// table): query heads per KV group (--heads), whole KV groups
// (--kv-groups), and both kinds with the MLP width.
func (b *bench) headsTable(ctx context.Context, sb *strings.Builder) error {
	type row struct {
		label string
		kv    bool
		kinds map[string]float64
	}
	rows := []row{
		{"`--heads 0.5` (one query head of each KV group)", false, map[string]float64{prune.KindHeads: 0.5}},
		{"`--kv-groups 0.5` (one KV group of each layer)", true, map[string]float64{prune.KindKVGroups: 0.5}},
		{"`--heads 0.5 --mlp 0.25`", false, map[string]float64{prune.KindHeads: 0.5, prune.KindMLP: 0.25}},
		{"`--kv-groups 0.5 --mlp 0.25`", true, map[string]float64{prune.KindKVGroups: 0.5, prune.KindMLP: 0.25}},
	}
	fmt.Fprintf(sb, "\nAttention at fixed ratios (same model and data): the same heads or KV groups count removed by every criterion, "+
		"chosen by its scores (wanda: Wanda-sp on the output projection's input columns; flap: their fluctuation, mean put back "+
		"into a bias; obs: the OBS error of the head's block of output-projection columns, the rest compensated; module: DIMAP; "+
		"zeroth: ECoFLaP's allocation, magnitude inside). Cells: perplexity (ratio to dense).\n\n")
	fmt.Fprintf(sb, "| pruned | kept | %s |\n|---|---|%s\n", strings.Join(headCriteria, " | "), strings.Repeat("---|", len(headCriteria)))
	for _, rw := range rows {
		cells := make([]string, len(headCriteria))
		var kept int64
		for i, crit := range headCriteria {
			n := 1
			if crit == "random" {
				n = *seeds
			}
			var ppl float64
			var err error
			for seed := range n {
				s := prune.Settings{Criterion: crit, Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
					Seed: uint64(seed + 1), KindRatios: rw.kinds, KVGroups: rw.kv}
				r := b.prune(ctx, s, false, "")
				if r.err != nil {
					err = r.err
					break
				}
				ppl += r.ppl / float64(n)
				kept = r.params
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "results-llm: %s %s: %v\n", rw.label, crit, err)
				cells[i] = "—"
				continue
			}
			cells[i] = fmt.Sprintf("%.3f (%.3f×)", ppl, ppl/b.ref)
		}
		fmt.Fprintf(sb, "| %s | %.1f%% | %s |\n", rw.label, 100*float64(kept)/float64(b.params), strings.Join(cells, " | "))
	}
	return nil
}
