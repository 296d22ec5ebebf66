package prune

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Layer-wise allocation: criteria that decide how many channels each
// group loses (zeroth-order sensitivity, module shares) and then which
// ones by a local score.

// Allocate shares a removal budget among layers. Layer i has n[i]
// channels and a non-negative sensitivity score[i]. Every layer keeps at
// least ⌈(1−sMax)·n[i]⌉ (and one); the total kept is
// Σn − round(ratio·Σn); what is kept beyond the minimums is shared in
// proportion to score, capped at each layer's size (what a cap frees is
// shared again among the others, in proportion to score). Integer counts
// follow the largest remainders (ties: lower index). It returns the kept
// count per layer, or an error when the minimums already exceed the
// kept total.
func Allocate(n []int, score []float64, ratio, sMax float64) ([]int, error) {
	if len(n) != len(score) {
		return nil, fmt.Errorf("prune: %d layers, %d scores", len(n), len(score))
	}
	total := 0
	keep := make([]int, len(n))
	minSum := 0
	for i, c := range n {
		total += c
		keep[i] = min(c, max(1, int(math.Ceil((1-sMax)*float64(c)-1e-9))))
		minSum += keep[i]
	}
	want := total - int(math.Round(ratio*float64(total)))
	if minSum > want {
		return nil, fmt.Errorf("prune: %w: the layers keep at least %d of %d channels at s_max %v; %d asked", ErrTarget, minSum, total, sMax, want)
	}
	extra := float64(want - minSum)
	share := make([]float64, len(n))
	open := make([]bool, len(n))
	for i := range n {
		open[i] = keep[i] < n[i]
	}
	for extra > 1e-9 {
		sum := 0.0
		nOpen := 0
		for i, o := range open {
			if o {
				sum += max(score[i], 0)
				nOpen++
			}
		}
		if nOpen == 0 {
			break
		}
		capped := false
		given := 0.0
		for i, o := range open {
			if !o {
				continue
			}
			w := 1 / float64(nOpen)
			if sum > 0 {
				w = max(score[i], 0) / sum
			}
			room := float64(n[i]-keep[i]) - share[i]
			add := extra * w
			if add >= room {
				add, open[i], capped = room, false, true
			}
			share[i] += add
			given += add
		}
		extra -= given
		if !capped {
			break
		}
	}
	// Integer parts, then the largest remainders.
	rest := want
	for i := range n {
		rest -= keep[i] + int(math.Floor(share[i]+1e-9))
	}
	type rem struct {
		i int
		r float64
	}
	var rs []rem
	for i := range n {
		f := math.Floor(share[i] + 1e-9)
		rs = append(rs, rem{i, share[i] - f})
		keep[i] += int(f)
	}
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].r > rs[b].r })
	for _, r := range rs {
		if rest <= 0 {
			break
		}
		if keep[r.i] < n[r.i] {
			keep[r.i]++
			rest--
		}
	}
	return keep, nil
}

// PlanWithCounts makes a plan in which group g keeps its keepCount[g]
// best indices by scores (groups not listed keep everything). The
// settings' floor (max layer ratio) and round-to apply on top.
func (a *Analysis) PlanWithCounts(s Settings, scores map[int][]float64, keepCount map[int]int) (*Plan, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	keep := map[int][]int{}
	for _, g := range a.Prunable() {
		k, ok := keepCount[g.ID]
		if !ok {
			continue
		}
		sc := scores[g.ID]
		if len(sc) != g.Size {
			return nil, fmt.Errorf("prune: group %d has %d scores for %d indices", g.ID, len(sc), g.Size)
		}
		idx := make([]int, g.Size)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(x, y int) bool { return sc[idx[x]] > sc[idx[y]] })
		// least important first, indices a cover needs last (cover.go)
		slices.Reverse(idx)
		order, maxRm := g.removalOrder(idx)
		k = max(k, s.minKeep(g), g.Size-maxRm)
		keep[g.ID] = s.kept(g, order, g.Size-s.roundKeep(k, g))
	}
	before := a.Cost()
	after := a.costOf(a.prunedSet(keep))
	return a.newPlan(s, keep, before, after), nil
}
