package importance

import (
	"context"
	"fmt"
	"runtime"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/prune"
)

// OBS scores a channel by the output error its removal leaves in the
// layers that consume it, after the optimal update of their remaining
// weights (Optimal Brain Surgeon applied to input channels, as in SPA):
// per consumer layer with input Hessian H = (2/n) Σ x xᵀ (damped by
// Damping × its mean diagonal), removing the columns Q of the channel
// costs ½ Σ_rows w_Q (H⁻¹_QQ)⁻¹ w_Qᵀ; the group score is the sum over its
// consumers. Compensate applies the update for the selected channels.
type OBS struct {
	Damping float64
	// Greedy orders each group's channels one removal at a time
	// (greedyScore) where GreedyBudget allows, instead of costing every
	// channel alone.
	Greedy bool
	// Notes lists layers without statistics and groups scored by the
	// fallback.
	Notes []string
	// oneShot names the groups Greedy left to one-shot scores because
	// ordering them would pass GreedyBudget (GreedyNote).
	oneShot []string
	// budget overrides GreedyBudget when positive (tests).
	budget float64

	// scored picks the groups worth statistics (nil: all); the others
	// are never ranked, and get magnitude scores without a note.
	scored func(*prune.Group) bool
	layers map[string]*calib.Layer
	// hinv is the damped inverse Hessian per layer; layers that read
	// the same input rows share one slice (sharedInputs).
	hinv map[string][]float64
}

// NewOBS collects the Hessians of every layer that consumes a prunable
// group's channels. Layers that read the same rows (a decoder's Q, K and
// V projections, its gate and up projections) share one Hessian and one
// inverse, and each Hessian is dropped once inverted: on a Llama-shaped
// decoder that is two statistics per block instead of six
// (docs/BENCHMARKS.md, "Data-aware pruning at scale").
func NewOBS(ctx context.Context, m *graph.Model, an *prune.Analysis, d Data, damping float64) (*OBS, error) {
	return NewOBSFor(ctx, m, an, d, damping, nil)
}

// NewOBSFor is NewOBS that collects statistics only for the consumers
// of the groups scored accepts (prune.Settings.Selects: selection never
// removes the others' channels).
func NewOBSFor(ctx context.Context, m *graph.Model, an *prune.Analysis, d Data, damping float64, scored func(*prune.Group) bool) (*OBS, error) {
	if damping <= 0 {
		damping = prune.DefaultDamping
	}
	// A grouped Conv's groups are consumers of their own (one Hessian
	// each) when the data is real; the data-free Hessian reads batch
	// norms over a whole layer's inputs.
	o := &OBS{Damping: damping, scored: scored, layers: consumerLayersOf(an, false, scored, d.Src != nil), hinv: map[string][]float64{}}
	reps, members := sharedInputs(o.layers)
	hs, notes, err := Hessians(ctx, m, d, reps)
	if err != nil {
		return nil, err
	}
	o.Notes = notes
	names := sortedNames(hs)
	for i, k := range names {
		progress.Report(ctx, "OBS inverses", i, len(names))
		// Each inverse takes seconds on a 3072-wide layer: a signal
		// stops the prune between two, not after the last.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		inv, err := hs[k].TakeDampedInverse(damping)
		if err != nil {
			return nil, fmt.Errorf("importance: obs: layer %s: %w", k, err)
		}
		delete(hs, k)
		for _, name := range members[k] {
			o.hinv[name] = inv
		}
		calib.CollectAfter(reps[k].In())
	}
	return o, nil
}

// sharedInputs picks one layer per distinct input rows
// (calib.Layer.RowsKey; every Conv alone): reps maps the
// representative's name to its layer, members the representative's name
// to every layer that shares its rows.
func sharedInputs(layers map[string]*calib.Layer) (reps map[string]*calib.Layer, members map[string][]string) {
	reps, members = map[string]*calib.Layer{}, map[string][]string{}
	byKey := map[string]string{}
	for _, name := range sortedNames(layers) {
		l := layers[name]
		rep := name
		if key, ok := l.RowsKey(); ok {
			if first, seen := byKey[key]; seen {
				rep = first
			} else {
				byKey[key] = name
			}
		}
		if rep == name {
			reps[name] = l
		}
		members[rep] = append(members[rep], name)
	}
	return reps, members
}

// Name implements Scorer.
func (*OBS) Name() string { return "obs" }

// Score implements Scorer.
func (o *OBS) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	return o.ScoreContext(context.Background(), g, grp)
}

// ScoreContext implements ContextScorer: the greedy order checks ctx
// after each index it removes.
func (o *OBS) ScoreContext(ctx context.Context, g *graph.Graph, grp *prune.Group) ([]float64, error) {
	if o.scored != nil && !o.scored(grp) {
		return Magnitude{P: 2}.Score(g, grp)
	}
	if o.Greedy {
		s, ok, err := o.greedyScore(ctx, g, grp)
		if err != nil || ok {
			return s, err
		}
	}
	return o.oneShotScore(g, grp)
}

// oneShotScore costs every channel of grp as if it alone went.
func (o *OBS) oneShotScore(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	cost := make([]float64, grp.Size)
	covered := false
	var read int64
	// A decoder's projections are read as 90 MB float64 copies per
	// group; collect them before the next group reads its own.
	defer func() { calib.CollectAfterBytes(read) }()
	for _, mem := range grp.Members {
		for _, l := range o.consumers(mem) {
			covered = true
			// Read on demand: a float64 copy of every consumer's weight
			// held for the whole run would double a large model's weights.
			w, err := l.Matrix(g)
			if err != nil {
				return nil, err
			}
			read += 8 * int64(len(w))
			for i, ps := range positionsByIndex(mem, grp.Size) {
				c, err := prune.OBSCost(w, l.Out(), l.In(), o.hinv[l.Key()], l.Columns(ps))
				if err != nil {
					return nil, err
				}
				cost[i] += c
			}
		}
	}
	if !covered {
		// No consumer with statistics: fall back to magnitude (L2).
		o.Notes = append(o.Notes, fmt.Sprintf("group %d (%s): no consumer layer with statistics, scored by magnitude", grp.ID, grp.Name))
		return Magnitude{P: 2}.Score(g, grp)
	}
	return cost, nil
}

// consumers are the layers with statistics whose input channels mem
// slices: one, or a grouped Conv's groups; none when mem is not such a
// layer's input axis.
func (o *OBS) consumers(mem prune.Member) []*calib.Layer {
	if mem.Kind != prune.KindWeightIn {
		return nil
	}
	ok := func(l *calib.Layer) bool {
		return l != nil && o.hinv[l.Key()] != nil && mem.Axis == l.InAxis() && l.Weight == mem.Tensor
	}
	if l := o.layers[mem.Node]; ok(l) {
		return []*calib.Layer{l}
	}
	var out []*calib.Layer
	for j := 0; ; j++ {
		l := o.layers[calib.PartKey(mem.Node, j)]
		if l == nil {
			return out
		}
		if ok(l) {
			out = append(out, l)
		}
	}
}

// positionsByIndex lists, per group index, the positions of mem's axis
// that index covers.
func positionsByIndex(mem prune.Member, size int) [][]int {
	pos := make([][]int, size)
	for p, idx := range mem.Map {
		if idx >= 0 && idx < size {
			pos[idx] = append(pos[idx], p)
		}
	}
	return pos
}

// Compensate applies the OBS update W ← W − W_{:,Q}(H⁻¹_QQ)⁻¹H⁻¹_{Q,:} to
// every consumer layer for the input channels the plan removes. It must
// run before the plan is applied (the columns are still there).
// Release drops the inverse Hessians once the last compensation is
// made. They take several times the consumer layers' weights (2.8 GB
// on a 2.3 GB decoder), and applying the plan allocates the pruned
// copies next: collected first, their memory is reused for those.
func (o *OBS) Release() {
	bytes := 0
	for _, h := range o.hinv {
		bytes += 8 * len(h)
	}
	o.hinv, o.layers = nil, nil
	if bytes >= 32<<20 {
		runtime.GC()
	}
}

func (o *OBS) Compensate(g *graph.Graph, p *prune.Plan) (int, error) {
	n := 0
	for _, k := range sortedNames(o.hinv) {
		l := o.layers[k]
		size := int(l.Dims[l.InAxis()])
		kept := prune.KeptPositions(p, l.Weight, l.InAxis(), size)
		var gone []int
		for pos, ok := range kept {
			if !ok {
				gone = append(gone, pos)
			}
		}
		if len(gone) == 0 {
			continue
		}
		w, err := l.Matrix(g)
		if err != nil {
			return n, err
		}
		if err := prune.OBSRemove(w, l.Out(), l.In(), o.hinv[k], l.Columns(gone)); err != nil {
			return n, fmt.Errorf("importance: obs: layer %s: %w", k, err)
		}
		if err := l.SetMatrix(g, w); err != nil {
			return n, err
		}
		// The update's buffers are several times the layer's weights.
		calib.CollectAfter(l.In())
		n++
	}
	return n, nil
}

// BlockCosts costs every channel of a group whose channels repeat in
// blocks (prune.Analysis.Blocks) on its own: cost[j][i] is what removing
// index i from block j alone leaves in the consumers, as oneShotScore
// sums over all blocks. ok is false when no consumer has statistics.
func (o *OBS) BlockCosts(g *graph.Graph, grp *prune.Group, blocks int) (cost [][]float64, ok bool, err error) {
	cost = make([][]float64, blocks)
	for j := range cost {
		cost[j] = make([]float64, grp.Size)
	}
	for _, mem := range grp.Members {
		for _, l := range o.consumers(mem) {
			w, err := l.Matrix(g)
			if err != nil {
				return nil, false, err
			}
			hinv := o.hinv[l.Key()]
			if part, parts := l.Part(); parts > 0 {
				// A grouped Conv's group reads its own block.
				if parts != blocks {
					return nil, false, nil
				}
				for i, ps := range positionsByIndex(mem, grp.Size) {
					c, err := prune.OBSCost(w, l.Out(), l.In(), hinv, l.Columns(ps))
					if err != nil {
						return nil, false, err
					}
					cost[part][i] += c
				}
				ok = true
				continue
			}
			b := len(mem.Map) / blocks
			for p, i := range mem.Map {
				if i < 0 || i >= grp.Size {
					continue
				}
				c, err := prune.OBSCost(w, l.Out(), l.In(), hinv, l.Columns([]int{p}))
				if err != nil {
					return nil, false, err
				}
				cost[p/b][i] += c
			}
			ok = true
		}
	}
	return cost, ok, nil
}
