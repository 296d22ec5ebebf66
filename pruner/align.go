package pruner

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// AlignTolerance is the largest relative output error (squared, as
// HeldOutScore.RelMSE) a reordering may leave: float rounding of sums
// taken in another order, far below any real change.
const AlignTolerance = 1e-8

// alignCheckSamples are the calibration samples the reordered model is
// checked on.
const alignCheckSamples = 16

// AlignBlocks sorts the channels inside each block of the groups that
// repeat in blocks (prune.Analysis.PermuteBlocks: the two sides of a
// grouped Conv) by their OBS cost on the calibration data, the most
// costly first, so that the offset selection later removes is each
// block's cheapest channel rather than whichever the exporter put
// there. m changes in place and computes what it did before: the
// reordered model is run on calibration samples against the original
// and the orders are undone when it differs. an stays m's analysis (only
// constants' contents move). The note is "" when nothing was reordered.
func AlignBlocks(ctx context.Context, m *graph.Model, an *prune.Analysis, cfg Config) (note string, err error) {
	blocks := map[int]int{}
	for _, grp := range an.Groups {
		if !cfg.Settings.Selects(grp) {
			continue
		}
		if g, _ := an.Blocks(grp); g >= 2 {
			blocks[grp.ID] = g
		}
	}
	if len(blocks) == 0 || cfg.Calib == "" {
		return "", nil
	}
	src, err := calib.Open(cfg.Calib, m, cfg.CalibSamples)
	if err != nil {
		return "", err
	}
	defer src.Close()
	ref, err := newHeldOut(ctx, m, src, 0, min(src.Len(), alignCheckSamples), importanceBatch(cfg))
	if err != nil {
		return "", err
	}
	obs, err := importance.NewOBSFor(ctx, m, an, importance.Data{Src: src, Batch: cfg.Batch}, cfg.Damping,
		func(grp *prune.Group) bool { return blocks[grp.ID] > 0 })
	if err != nil {
		return "", err
	}
	defer obs.Release()
	// Every order is costed before any tensor moves: a layer's inverse
	// Hessian is over its inputs as they were.
	orders := map[int][][]int{}
	for _, grp := range an.Groups {
		g := blocks[grp.ID]
		if g == 0 {
			continue
		}
		cost, ok, err := obs.BlockCosts(m.Graph, grp, g)
		if err != nil {
			return "", err
		}
		if ok {
			orders[grp.ID] = costOrders(cost)
		}
	}
	var moved []*prune.Group
	for _, grp := range an.Groups {
		from, ok := orders[grp.ID]
		if !ok || identityOrders(from) {
			continue
		}
		if err := an.PermuteBlocks(grp, from); err != nil {
			return "", err
		}
		moved = append(moved, grp)
	}
	if len(moved) == 0 {
		return "", nil
	}
	got, err := ref.score(ctx, m)
	if err != nil {
		return "", err
	}
	if got.RelMSE > AlignTolerance {
		for _, grp := range moved {
			if err := an.PermuteBlocks(grp, inverseOrders(orders[grp.ID])); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("channels not reordered inside the groups of grouped convolutions: the reordered model's outputs differed from the original's (relative error %.2g)", got.RelMSE), nil
	}
	return fmt.Sprintf("channels reordered inside the groups of grouped convolutions (%d channel groups, by OBS cost): an offset removes each group's cheapest channel; outputs unchanged on %d calibration samples (relative error %.1g)", len(moved), ref.to, got.RelMSE), nil
}

// costOrders lists, per block, the indices from the most to the least
// costly (ties in index order).
func costOrders(cost [][]float64) [][]int {
	out := make([][]int, len(cost))
	for j, c := range cost {
		o := make([]int, len(c))
		for i := range o {
			o[i] = i
		}
		slices.SortStableFunc(o, func(a, b int) int { return cmp.Compare(c[b], c[a]) })
		out[j] = o
	}
	return out
}

// inverseOrders undoes orders: block j's index from[j][i] takes back
// what index i holds.
func inverseOrders(from [][]int) [][]int {
	inv := make([][]int, len(from))
	for j, o := range from {
		inv[j] = make([]int, len(o))
		for i, v := range o {
			inv[j][v] = i
		}
	}
	return inv
}

func identityOrders(from [][]int) bool {
	for _, o := range from {
		for i, v := range o {
			if i != v {
				return false
			}
		}
	}
	return true
}
