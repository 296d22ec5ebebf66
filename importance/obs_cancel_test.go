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

// errAfter is a context whose Err reports Canceled from its n-th call
// on: it stops a loop that checks it at a known iteration.
type errAfter struct {
	context.Context
	n, calls int
}

func (c *errAfter) Err() error {
	if c.calls++; c.calls >= c.n {
		return context.Canceled
	}
	return nil
}

// A signal during one group's greedy OBS order stops the order after
// the removal under way, not after the group, and ScoreAll returns the
// context's error.
func TestOBSOrderStopsInsideAGroup(t *testing.T) {
	m, an, d := trainedDecoder(t)
	o, err := NewOBS(context.Background(), m, an, d, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	o.Greedy = true
	grp := an.Prunable()[0]
	full, err := o.Score(an.Graph(), grp)
	if err != nil || len(full) != grp.Size {
		t.Fatalf("uncancelled score: %d scores for %d, %v", len(full), grp.Size, err)
	}
	if grp.Size < 8 {
		t.Fatalf("group %s has %d indices: too few to stop inside", grp.Name, grp.Size)
	}
	ctx := &errAfter{Context: context.Background(), n: 3}
	if _, err := o.ScoreContext(ctx, an.Graph(), grp); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled order: %v; want context.Canceled", err)
	}
	if ctx.calls != 3 {
		t.Errorf("the order checked its context %d times; want 3 (it stops at the third removal of %d)", ctx.calls, grp.Size)
	}
	ctx = &errAfter{Context: context.Background(), n: 2}
	if _, err := ScoreAll(ctx, o, an); !errors.Is(err, context.Canceled) {
		t.Fatalf("ScoreAll cancelled inside the first group: %v; want context.Canceled", err)
	}
}
