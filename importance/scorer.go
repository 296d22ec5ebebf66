package importance

import (
	"errors"
	"fmt"

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

// ScoreAll scores every prunable group of an analysis.
func ScoreAll(s Scorer, a *prune.Analysis) (map[int][]float64, error) {
	out := map[int][]float64{}
	for _, grp := range a.Prunable() {
		sc, err := s.Score(a.Graph(), grp)
		if err != nil {
			return nil, fmt.Errorf("importance: group %d (%s): %w", grp.ID, grp.Name, err)
		}
		if len(sc) != grp.Size {
			return nil, fmt.Errorf("importance: group %d: %d scores for %d indices", grp.ID, len(sc), grp.Size)
		}
		out[grp.ID] = sc
	}
	return out, nil
}
