package importance

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// Taylor is first-order Taylor importance (Molchanov et al.; Torch-
// Pruning's TaylorImportance): removing the slice s of a weight changes
// the loss by about −Σ_s w·∂L/∂w, so a member's score for an index is
// that sum over the index's slice, squared and accumulated over the
// calibration batches (Molchanov et al. 2019's group form, which does not
// let opposite gradients of different batches cancel). The gradient is
// that of the cross-entropy against the dense model's own top-1
// predictions (no labels needed; a soft KL or MSE toward the dense
// outputs has zero gradient at the dense model). The gradients come from
// package grad's gorgonia translation of the model.
type Taylor struct {
	sal   map[string][][]float64 // by initializer and axis: Σ_batches (Σ_slice w·g)²
	Notes []string
}

// NewTaylor runs the calibration data through the differentiable model
// and keeps |w·∂L/∂w| for every weight.
func NewTaylor(ctx context.Context, m *graph.Model, d Data) (*Taylor, error) {
	if d.Src == nil {
		return nil, fmt.Errorf("importance: taylor needs calibration data")
	}
	batch := min(d.Src.Fit(taylorBatch), d.Src.Len())
	// A model pruned by an earlier step may have a cache with fewer
	// heads than the data (ioslice).
	kept, err := ioslice.FromModel(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("importance: taylor: %w", err)
	}
	first, err := d.Src.Batch(0, batch)
	if err == nil {
		first, err = kept.SliceAll(first)
	}
	if err != nil {
		return nil, fmt.Errorf("importance: taylor: %w", err)
	}
	// A decoder's sequence length comes from the data; an export's
	// mask and positions take the first input's axes.
	input := m.Graph.Inputs[0].Name
	lead, ok := first[input]
	if !ok || len(lead.Shape) == 0 {
		return nil, fmt.Errorf("importance: taylor: the data has no batch of input %s", input)
	}
	// The gradient of a batch is its chunks' mean (grad.ChunkRows): the
	// float64 tape holds one chunk, as the distillation's does.
	_, isFloat := lead.Data.([]float32)
	chunk := grad.ChunkRows(int(lead.Shape[0]), lead.Shape, !isFloat)
	net, err := grad.BuildInputs(m, grad.ChunkShapes(first, chunk))
	if err != nil {
		return nil, fmt.Errorf("importance: taylor: %w", err)
	}
	obj, err := grad.NewObjective(net, grad.PseudoLabel)
	if err != nil {
		return nil, fmt.Errorf("importance: taylor: %w", err)
	}
	names := net.WeightNames()
	sal := make(map[string][][]float64, len(names))
	dims := map[string][]int64{}
	for _, n := range names {
		dims[n] = m.Graph.Initializer(n).Dims
		sal[n] = make([][]float64, len(dims[n]))
		for a, d := range dims[n] {
			sal[n][a] = make([]float64, d)
		}
	}
	used, skipped := 0, 0
	err = d.Src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
		x, ok := in[input]
		if !ok || len(x.Shape) == 0 {
			return fmt.Errorf("no batch of input %s", input)
		}
		if rows := int(x.Shape[0]); rows != batch {
			skipped += rows
			return nil
		}
		in, err := kept.SliceAll(in)
		if err != nil {
			return err
		}
		ref, err := net.ForwardInputs(in)
		if err != nil {
			return err
		}
		if _, err := obj.StepInputs(in, toFloat32(ref)); err != nil {
			return err
		}
		for _, n := range names {
			g, w := obj.Grad(n), net.Data(n)
			wg := make([]float64, len(g))
			for i := range g {
				wg[i] = w[i] * g[i]
			}
			for a := range dims[n] {
				for p, v := range axisTotals(wg, dims[n], a) {
					sal[n][a][p] += v * v
				}
			}
		}
		used += batch
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("importance: taylor: %w", err)
	}
	if used == 0 {
		return nil, fmt.Errorf("importance: taylor: no full batch of %d samples", batch)
	}
	t := &Taylor{sal: sal}
	t.Notes = append(t.Notes, fmt.Sprintf("taylor: gradients of the pseudo-label cross-entropy over %d calibration samples (batches of %d, in chunks of %d)", used, batch, chunk))
	if skipped > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("taylor: %d samples of a last partial batch not used", skipped))
	}
	return t, nil
}

// Name implements Scorer.
func (*Taylor) Name() string { return "taylor" }

// Score implements Scorer: for each member, its accumulated score of
// each index, divided by its mean over the indices the member covers (as
// magnitude normalises, so that a global ranking compares groups of
// different scales), averaged over members.
func (t *Taylor) Score(_ *graph.Graph, grp *prune.Group) ([]float64, error) {
	total := make([]float64, grp.Size)
	count := make([]int, grp.Size)
	for _, mem := range grp.Members {
		axes, ok := t.sal[mem.Tensor]
		if !ok || mem.Kind == prune.KindNormStat || mem.Axis < 0 || mem.Axis >= len(axes) {
			continue // not a weight of the net (a shared or folded constant)
		}
		pos := axes[mem.Axis]
		if len(pos) != len(mem.Map) {
			return nil, fmt.Errorf("member %q: %d positions for a map of %d", mem.Tensor, len(pos), len(mem.Map))
		}
		s := make([]float64, grp.Size)
		covered := make([]bool, grp.Size)
		for p, idx := range mem.Map {
			if idx >= 0 && idx < grp.Size {
				s[idx] += math.Sqrt(pos[p]) // root mean square over batches: less skewed than its square
				covered[idx] = true
			}
		}
		for i := range s {
			if !covered[i] {
				s[i] = math.NaN()
			}
		}
		addNormalised(total, count, s)
	}
	for i := range total {
		if count[i] > 0 {
			total[i] /= float64(count[i])
		}
	}
	return total, nil
}

// axisTotals sums v (row-major, dims) over every axis but axis.
func axisTotals(v []float64, dims []int64, axis int) []float64 {
	if axis < 0 || axis >= len(dims) {
		return nil
	}
	inner := int64(1)
	for _, d := range dims[axis+1:] {
		inner *= d
	}
	n := dims[axis]
	out := make([]float64, n)
	for i, x := range v {
		out[(int64(i)/inner)%n] += x
	}
	return out
}

// taylorBatch is the batch of one gradient: small batches give more
// squared terms and less cancellation between samples.
const taylorBatch = 32
