package importance

import (
	"errors"
	"fmt"
	"math"

	"github.com/pare-dev/pare/prune"
)

// Criteria that allocate by themselves (zeroth, module) share what
// prune.Select does with the settings: kinds with a ratio of their own
// (--heads, --kv-groups, --mlp, --embed) and a params or MACs target for
// the rest.

// kindSplit splits the prunable groups as prune.Select does: the groups
// of a kind with a ratio of its own, by kind, and the free groups that
// Ratio and Target select from (embedding widths only with PruneEmbed or
// a ratio of their own).
func kindSplit(an *prune.Analysis, s prune.Settings) (free []*prune.Group, byKind map[string][]*prune.Group) {
	byKind = map[string][]*prune.Group{}
	for _, g := range an.Prunable() {
		if _, ok := s.KindRatios[g.Kind]; ok {
			byKind[g.Kind] = append(byKind[g.Kind], g)
			continue
		}
		if g.Kind == prune.KindEmbed && !s.PruneEmbed {
			continue
		}
		free = append(free, g)
	}
	return free, byKind
}

// targetTolerance is how close a params or MACs target must land, as a
// fraction of the model's total (prune.Select's tolerance).
const targetTolerance = 0.02

// planForTarget finds, by bisection on the ratio r given to counts (the
// kept count per free group at ratio r, merged into fixed, the counts of
// the kinds with their own ratio), the plan whose params or MACs
// reduction is nearest s.Ratio of the model's, and refuses (ErrTarget)
// one more than 2% of the total away. counts may fail for an r beyond
// what its minimums allow (taken as too large). With RoundSoft, a miss
// with rounded counts is retried with exact counts, as Select does.
func planForTarget(an *prune.Analysis, s prune.Settings, scores map[int][]float64, fixed map[int]int, hi float64, counts func(r float64) (map[int]int, error)) (*prune.Plan, error) {
	metric := func(c prune.Cost) float64 { return c.Of(s.Target) }
	total := metric(an.Cost())
	want := s.Ratio * total
	planAt := func(r float64) (*prune.Plan, float64, error) {
		c, err := counts(r)
		if err != nil {
			return nil, 0, err
		}
		all := map[int]int{}
		for k, v := range fixed {
			all[k] = v
		}
		for k, v := range c {
			all[k] = v
		}
		p, err := an.PlanWithCounts(s, scores, all)
		if err != nil {
			return nil, 0, err
		}
		return p, total - metric(p.After), nil
	}
	best, bestRed, err := planAt(0)
	if err != nil {
		return nil, err
	}
	lo, up := 0.0, hi
	for range 40 {
		mid := (lo + up) / 2
		p, red, err := planAt(mid)
		if err != nil {
			if !errors.Is(err, prune.ErrTarget) {
				return nil, err
			}
			up = mid
			continue
		}
		if math.Abs(red-want) < math.Abs(bestRed-want) {
			best, bestRed = p, red
		}
		if red >= want {
			up = mid
		} else {
			lo = mid
		}
	}
	if math.Abs(bestRed-want) > targetTolerance*total {
		if s.RoundSoft && s.RoundTo > 1 {
			exact := s
			exact.RoundTo, exact.RoundSoft = 1, false
			return planForTarget(an, exact, scores, fixed, hi, counts)
		}
		return nil, fmt.Errorf("importance: %w: %s reduction %.1f%% asked, the closest allocation removes %.1f%% (try another ratio or --round-to 1)",
			prune.ErrTarget, s.Target, 100*s.Ratio, 100*bestRed/total)
	}
	return best, nil
}
