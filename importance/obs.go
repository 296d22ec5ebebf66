package importance

import (
	"context"
	"fmt"

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
	// Notes lists layers without statistics and groups scored by the
	// fallback.
	Notes []string

	layers map[string]*calib.Layer
	hinv   map[string][]float64
	w      map[string][]float64
}

// NewOBS collects the Hessians of every layer that consumes a prunable
// group's channels.
func NewOBS(ctx context.Context, m *graph.Model, an *prune.Analysis, d Data, damping float64) (*OBS, error) {
	if damping <= 0 {
		damping = prune.DefaultDamping
	}
	o := &OBS{Damping: damping, layers: consumerLayers(an, false), hinv: map[string][]float64{}, w: map[string][]float64{}}
	hs, notes, err := Hessians(ctx, m, d, o.layers)
	if err != nil {
		return nil, err
	}
	o.Notes = notes
	names := sortedNames(hs)
	for i, k := range names {
		progress.Report(ctx, "OBS inverses", i, len(names))
		l := o.layers[k]
		inv, err := calib.DampedInverseRows(hs[k], l.In(), damping)
		if err != nil {
			return nil, fmt.Errorf("importance: obs: layer %s: %w", k, err)
		}
		o.hinv[k] = inv
		if o.w[k], err = l.Matrix(m.Graph); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Name implements Scorer.
func (*OBS) Name() string { return "obs" }

// Score implements Scorer.
func (o *OBS) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	cost := make([]float64, grp.Size)
	covered := false
	for _, mem := range grp.Members {
		l := o.layers[mem.Node]
		if mem.Kind != prune.KindWeightIn || l == nil || o.hinv[mem.Node] == nil || mem.Axis != l.InAxis() || l.Weight != mem.Tensor {
			continue
		}
		covered = true
		pos := make([][]int, grp.Size)
		for p, idx := range mem.Map {
			if idx >= 0 && idx < grp.Size {
				pos[idx] = append(pos[idx], p)
			}
		}
		for i, ps := range pos {
			c, err := prune.OBSCost(o.w[mem.Node], l.Out(), l.In(), o.hinv[mem.Node], l.Columns(ps))
			if err != nil {
				return nil, err
			}
			cost[i] += c
		}
	}
	if !covered {
		// No consumer with statistics: fall back to magnitude (L2).
		o.Notes = append(o.Notes, fmt.Sprintf("group %d (%s): no consumer layer with statistics, scored by magnitude", grp.ID, grp.Name))
		return Magnitude{P: 2}.Score(g, grp)
	}
	return cost, nil
}

// Compensate applies the OBS update W ← W − W_{:,Q}(H⁻¹_QQ)⁻¹H⁻¹_{Q,:} to
// every consumer layer for the input channels the plan removes. It must
// run before the plan is applied (the columns are still there).
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
		n++
	}
	return n, nil
}
