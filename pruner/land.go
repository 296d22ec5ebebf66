package pruner

import (
	"math"

	"github.com/pare-dev/pare/prune"
)

// One μ scales every group's ratio, and rounding makes the saving jump
// along μ: the nearest plan on that line can miss the target by a few
// points (a transformer's embedding width moves many parameters per
// rounded step, and a step of a multi-step run is a small target).
// landOnTarget then moves one group at a time by one rounded step,
// toward the target: of the moves that bring the saving nearer, the one
// the error model s·(r/f)² prices lowest per unit saved (or, giving
// back, that returns the most error per unit). When no move brings it
// nearer, the cheapest move across the target is taken, and the moves
// back come from other groups (a group moves one way only, so nothing
// cycles): a whole head dim removed and MLP channels given back reach
// what neither reaches alone. The nearest plan seen is kept.

// landTolerance is how near the target, as a fraction of the target's
// total, the refinement stops; landMoves bounds its moves.
const (
	landTolerance = 0.002
	landMoves     = 256
)

// landOnTarget refines plan p, which saves got of the target, toward
// s.Ratio.
func landOnTarget(an *prune.Analysis, s prune.Settings, scores map[int][]float64, sens []GroupSensitivity, p *prune.Plan, got float64) (*prune.Plan, error) {
	groups := map[int]*prune.Group{}
	for _, g := range an.Prunable() {
		groups[g.ID] = g
	}
	counts := map[int]int{}
	keep := p.Keep()
	for _, gs := range sens {
		if k, ok := keep[gs.ID]; ok {
			counts[gs.ID] = len(k)
		} else {
			counts[gs.ID] = groups[gs.ID].Size
		}
	}
	// predicted is a group's modelled error at kept count k.
	predicted := func(gs GroupSensitivity, k int) float64 {
		size := float64(groups[gs.ID].Size)
		r := (size - float64(k)) / size / gs.Probe
		return gs.Error * r * r
	}
	moved := map[int]int{} // the direction a group has moved: -1 removing, +1 giving back
	best, bestGot := p, got
	type move struct {
		plan       *prune.Plan
		got, price float64
		id, kept   int
	}
	for range landMoves {
		gap := got - s.Ratio
		if math.Abs(gap) <= landTolerance {
			break
		}
		dir := 1 // the plan saves too much: give back
		if gap < 0 {
			dir = -1
		}
		var nearer, across *move
		for _, gs := range sens {
			if moved[gs.ID] == -dir {
				continue
			}
			g := groups[gs.ID]
			k := counts[gs.ID]
			nk := k + dir*s.RoundStep(g)
			if nk > g.Size || nk < max(1, int(math.Ceil((1-s.MaxLayerRatio)*float64(g.Size)))) {
				continue
			}
			counts[gs.ID] = nk
			q, err := an.PlanWithCounts(s, scores, counts)
			counts[gs.ID] = k
			if err != nil {
				return nil, err
			}
			kept := len(q.Keep()[gs.ID])
			r := reduction(an, q, s.Target)
			if kept == k || r == got {
				continue // a cover or a segment's rounding kept the count
			}
			// Error added per unit saved; giving back, error returned
			// per unit given back, negated so the lowest goes first.
			price := (predicted(gs, kept) - predicted(gs, k)) / (r - got)
			if dir > 0 {
				price = -price
			}
			m := &move{plan: q, got: r, price: price, id: gs.ID, kept: kept}
			switch {
			case math.Abs(r-s.Ratio) < math.Abs(gap):
				if nearer == nil || price < nearer.price {
					nearer = m
				}
			case (r-s.Ratio)*gap < 0:
				if across == nil || price < across.price {
					across = m
				}
			}
		}
		m := nearer
		if m == nil {
			m = across
		}
		if m == nil {
			break
		}
		p, got, counts[m.id], moved[m.id] = m.plan, m.got, m.kept, dir
		if math.Abs(got-s.Ratio) < math.Abs(bestGot-s.Ratio) {
			best, bestGot = p, got
		}
	}
	return best, nil
}
