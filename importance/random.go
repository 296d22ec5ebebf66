package importance

import (
	"math/rand/v2"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// Random scores uniformly at random, seeded per group so that a group's
// scores do not depend on the others: the baseline every table needs.
type Random struct{ Seed uint64 }

// Name implements Scorer.
func (Random) Name() string { return "random" }

// Score implements Scorer.
func (r Random) Score(_ *graph.Graph, grp *prune.Group) ([]float64, error) {
	rng := rand.New(rand.NewPCG(r.Seed, uint64(grp.ID)))
	out := make([]float64, grp.Size)
	for i := range out {
		out[i] = rng.Float64()
	}
	return out, nil
}
