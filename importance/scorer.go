package importance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// ErrUnknownCriterion marks a criterion name pare does not know.
var ErrUnknownCriterion = errors.New("unknown criterion")

// Scorer scores the indices of a group.
type Scorer interface {
	// Name is the criterion as recorded in plans.
	Name() string
	// Score returns one score per index of grp (len grp.Size).
	Score(g *graph.Graph, grp *prune.Group) ([]float64, error)
}

// ContextScorer is a Scorer whose scoring of one group can stop when
// ctx is done: a greedy OBS order over a 3072-wide layer takes seconds,
// which a signal should not wait for. ScoreAll uses it where a scorer
// has it.
type ContextScorer interface {
	Scorer
	ScoreContext(ctx context.Context, g *graph.Graph, grp *prune.Group) ([]float64, error)
}

// Criteria are the structured pruning criteria pruner.Run accepts: the scorers
// of New and the data-aware ones.
var Criteria = []string{"magnitude", "l1", "l2", "random", "obs", "wanda", "flap", "module", "zeroth", "taylor"}

// New returns the scorer for a criterion name: magnitude (with norm
// "l1" or "l2"), l1, l2 or random.
func New(criterion, norm string, seed uint64) (Scorer, error) {
	switch criterion {
	case "magnitude", "":
		switch norm {
		case "l1":
			return Magnitude{P: 1}, nil
		case "l2", "":
			return Magnitude{P: 2}, nil
		}
		return nil, fmt.Errorf("importance: %w: norm %q (want l1 or l2)", ErrUnknownCriterion, norm)
	case "l1":
		return Magnitude{P: 1}, nil
	case "l2":
		return Magnitude{P: 2}, nil
	case "random":
		return Random{Seed: seed}, nil
	}
	return nil, fmt.Errorf("importance: %w: %q", ErrUnknownCriterion, criterion)
}

// ScoreAll scores every prunable group of an analysis. Magnitude and
// random, which only read the graph, score groups on several goroutines.
func ScoreAll(ctx context.Context, s Scorer, a *prune.Analysis) (map[int][]float64, error) {
	switch sc := s.(type) {
	case Magnitude:
		m, err := sc.withCache(a)
		if err != nil {
			return nil, fmt.Errorf("importance: %w", err)
		}
		return scoreParallel(m, a)
	case Random:
		return scoreParallel(s, a)
	}
	out := map[int][]float64{}
	for _, grp := range a.Prunable() {
		// A group's OBS order takes seconds on a 3072-wide layer: a
		// signal stops the scoring between two groups, and inside one
		// where the scorer is a ContextScorer.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var sc []float64
		var err error
		if cs, ok := s.(ContextScorer); ok {
			sc, err = cs.ScoreContext(ctx, a.Graph(), grp)
		} else {
			sc, err = s.Score(a.Graph(), grp)
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr // stopped, not failed: no group to name
			}
			return nil, fmt.Errorf("importance: group %d (%s): %w", grp.ID, grp.Name, err)
		}
		if len(sc) != grp.Size {
			return nil, fmt.Errorf("importance: group %d: %d scores for %d indices", grp.ID, len(sc), grp.Size)
		}
		out[grp.ID] = sc
	}
	return out, nil
}

// parallel calls f(0..n-1) on up to GOMAXPROCS (at most 8) goroutines
// and returns the first error by index.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 8, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func scoreParallel(s Scorer, a *prune.Analysis) (map[int][]float64, error) {
	groups := a.Prunable()
	res := make([][]float64, len(groups))
	errs := make([]error, len(groups))
	_ = parallel(len(groups), func(i int) error {
		res[i], errs[i] = s.Score(a.Graph(), groups[i])
		return nil
	})
	out := map[int][]float64{}
	for i, grp := range groups {
		if errs[i] != nil {
			return nil, fmt.Errorf("importance: group %d (%s): %w", grp.ID, grp.Name, errs[i])
		}
		if len(res[i]) != grp.Size {
			return nil, fmt.Errorf("importance: group %d: %d scores for %d indices", grp.ID, len(res[i]), grp.Size)
		}
		out[grp.ID] = res[i]
	}
	return out, nil
}

// addNormalised adds member scores s (NaN: not covered), divided by their
// mean over the covered indices, into total and counts them.
func addNormalised(total []float64, count []int, s []float64) {
	var sum float64
	var n int
	for _, v := range s {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	mean := sum / float64(max(n, 1))
	for i, v := range s {
		if math.IsNaN(v) {
			continue
		}
		if mean > 0 {
			v /= mean
		}
		total[i] += v
		count[i]++
	}
}
