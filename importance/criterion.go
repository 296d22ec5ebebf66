package importance

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// Allocator is a criterion that decides per-group ratios itself; the
// driver asks it for the plan instead of selecting from scores.
type Allocator interface {
	Plan(ctx context.Context, an *prune.Analysis, s prune.Settings) (*prune.Plan, error)
}

// CriterionConfig holds the settings of criteria that take more than a
// name: the magnitude norm, the seed, and the zeroth-order allocation.
type CriterionConfig struct {
	Norm     string
	Seed     uint64
	ZOBudget int
	ZOLocal  string
	ZOSMax   float64
}

// NeedsData reports whether a criterion needs calibration data (obs can
// do without, from BatchNormalization statistics).
func NeedsData(criterion string) bool {
	switch criterion {
	case "obs", "wanda", "zeroth", "flap", "taylor":
		return true
	}
	return false
}

// NewCriterion returns the scorer of a criterion other than obs (which
// also compensates; see NewOBS), with the notes it made.
func NewCriterion(ctx context.Context, m *graph.Model, an *prune.Analysis, crit string, cfg CriterionConfig, d Data) (Scorer, []string, error) {
	switch crit {
	case "zeroth":
		local, err := localScorer(ctx, m, an, cfg, d)
		if err != nil {
			return nil, nil, err
		}
		return &Zeroth{Local: local, SMax: cfg.ZOSMax, Budget: cfg.ZOBudget, Seed: cfg.Seed, m: m, d: d}, nil, nil
	case "module":
		return NewModule(an), nil, nil
	case "taylor":
		t, err := NewTaylor(ctx, m, d)
		if err != nil {
			return nil, nil, err
		}
		return t, t.Notes, nil
	case "wanda":
		w, err := NewWanda(ctx, m, an, d)
		if err != nil {
			return nil, nil, err
		}
		return w, nil, nil // its notes come from scoring: ScoringNotes
	}
	sc, err := New(crit, cfg.Norm, cfg.Seed)
	return sc, nil, err
}

// localScorer is the criterion inside each group for the zeroth-order
// allocation: magnitude (L2, the default) or wanda.
func localScorer(ctx context.Context, m *graph.Model, an *prune.Analysis, cfg CriterionConfig, d Data) (Scorer, error) {
	switch cfg.ZOLocal {
	case "", "magnitude", "l2":
		return Magnitude{P: 2}, nil
	case "l1":
		return Magnitude{P: 1}, nil
	case "wanda":
		return NewWanda(ctx, m, an, d)
	}
	return nil, fmt.Errorf("importance: %w: --zo-local %q (want magnitude, l1 or wanda)", ErrUnknownCriterion, cfg.ZOLocal)
}

// ScoringNotes returns the notes a criterion made while scoring (the
// groups wanda scored by magnitude for want of statistics, also as
// zeroth's local criterion), each prefixed with the criterion's name;
// the driver reports them once the scores are taken.
func ScoringNotes(sc Scorer) []string {
	switch s := sc.(type) {
	case *Wanda:
		out := make([]string, len(s.Notes))
		for i, n := range s.Notes {
			out[i] = "wanda: " + n
		}
		return out
	case *Zeroth:
		return ScoringNotes(s.Local)
	}
	return nil
}
