package importance

import (
	"context"
	"errors"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress/progresstest"
	"github.com/pare-dev/pare/prune"
)

// A signal during the OBS inverses (seconds each on a wide layer) stops
// them between two layers: cancelled after the first, NewOBS returns
// the context's error and inverts no other.
func TestOBSStopsBetweenInverses(t *testing.T) {
	m, an, d := trainedDecoder(t)
	ctx, cancel, reported := progresstest.CancelAt("OBS inverses", 1)
	defer cancel()
	o, err := NewOBS(ctx, m, an, d, 0.01)
	if !errors.Is(err, context.Canceled) || o != nil {
		t.Fatalf("NewOBS cancelled during its inverses: %v, %v; want context.Canceled", o, err)
	}
	if len(*reported) != 2 || (*reported)[1] != 1 {
		t.Errorf("inverse reports %v: want 0 and 1, then the stop", *reported)
	}
}

// countingScorer cancels its context after its first group.
type countingScorer struct {
	Scorer
	cancel func()
	scored int
}

func (c *countingScorer) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	s, err := c.Scorer.Score(g, grp)
	if c.scored++; c.scored == 1 {
		c.cancel()
	}
	return s, err
}

// A signal while groups are scored (a group's greedy OBS order takes
// seconds on a 3072-wide layer) stops ScoreAll before the next group.
func TestScoreAllStopsBetweenGroups(t *testing.T) {
	m, an, d := trainedDecoder(t)
	o, err := NewOBS(context.Background(), m, an, d, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := &countingScorer{Scorer: o, cancel: cancel}
	if _, err := ScoreAll(ctx, sc, an); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scoring: %v; want context.Canceled", err)
	}
	if sc.scored != 1 || len(an.Prunable()) < 2 {
		t.Errorf("%d of %d groups scored after the cancel; want 1", sc.scored, len(an.Prunable()))
	}
}
