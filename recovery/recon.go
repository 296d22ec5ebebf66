package recovery

import (
	"context"
	"fmt"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/prune"
)

// ReconDamping is the ridge added (as a fraction of the mean diagonal of
// the input Gram matrix, weight columns only) when re-fitting a layer.
var ReconDamping = 1e-3

// ReconAddBias gives a refitted Conv or Gemm that has no bias a zero one
// first, so that the refit can correct the mean shift pruning leaves in
// its outputs. Without it a Conv that feeds a Concat and an unfolded
// BatchNormalization (a DenseNet layer's growth Conv) can only rescale;
// on the trained DenseNet fixture the biases are worth 1.2–1.5 points
// at 30–70% of the parameters removed.
var ReconAddBias = true

// weightedLayers lists, in graph order, the Conv/Gemm/MatMul layers of
// m that calib can read and that keep accepts.
func weightedLayers(m *graph.Model, keep func(*calib.Layer) bool) []*calib.Layer {
	var out []*calib.Layer
	for _, n := range m.Graph.Nodes {
		if !graph.IsWeighted(n) {
			continue
		}
		if l, err := calib.NewLayer(m.Graph, n); err == nil && keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// changedLayers lists, in graph order, the Conv/Gemm/MatMul layers of
// the dense model whose input channels the plan removes.
func changedLayers(dense *graph.Model, p *prune.Plan) []*calib.Layer {
	return weightedLayers(dense, func(l *calib.Layer) bool { return lostInputs(l, p) })
}

func lostInputs(l *calib.Layer, p *prune.Plan) bool {
	return slices.Contains(prune.KeptPositions(p, l.Weight, l.InAxis(), int(l.Dims[l.InAxis()])), false)
}

// refitLayers is weightedLayers with the groups of m's grouped Convs
// (calib.GroupParts) among them, in graph order: each group's outputs
// read only its own inputs, so it is refitted as a layer of its own.
func refitLayers(m *graph.Model, keep func(*calib.Layer) bool) []*calib.Layer {
	out := weightedLayers(m, keep)
	for _, n := range m.Graph.Nodes {
		if n.Op() != "Conv" || n.IntAttr("group", 1) < 2 {
			continue
		}
		parts, err := calib.GroupParts(m.Graph, n)
		if err != nil {
			continue
		}
		for _, l := range parts {
			if keep(l) {
				out = append(out, l)
			}
		}
	}
	return inGraphOrder(m.Graph, out)
}

// countNodes counts the layers of ls, a grouped Conv's parts once.
func countNodes(ls []*calib.Layer) int {
	seen := map[*graph.Node]bool{}
	for _, l := range ls {
		seen[l.Node] = true
	}
	return len(seen)
}

// inGraphOrder sorts layers (and parts) by their node's place in g.
func inGraphOrder(g *graph.Graph, ls []*calib.Layer) []*calib.Layer {
	at := map[*graph.Node]int{}
	for i, n := range g.Nodes {
		at[n] = i
	}
	slices.SortStableFunc(ls, func(a, b *calib.Layer) int { return at[a.Node] - at[b.Node] })
	return ls
}

// outAxis is the axis of the stored weight over output channels.
func outAxis(l *calib.Layer) int {
	if l.T {
		return 1
	}
	return 0
}

// keptRows returns the dense output rows the pruned layer still has (a
// part's own rows, counted from its first).
func keptRows(l *calib.Layer, p *prune.Plan) []int {
	part, parts := l.Part()
	var rows []int
	for i, k := range prune.KeptPositions(p, l.Weight, outAxis(l), l.Out()*max(parts, 1)) {
		if r := i - part*l.Out(); k && r >= 0 && r < l.Out() {
			rows = append(rows, r)
		}
	}
	return rows
}

// prunedLayer finds dense layer dl's node in the pruned graph g and
// builds its layer there. n is nil when pruning removed the node; err
// says why a node that is still there is no layer.
func prunedLayer(g *graph.Graph, dl *calib.Layer) (n *graph.Node, pl *calib.Layer, err error) {
	if n = nodeByName(g, dl.Node.Name()); n == nil {
		return nil, nil, nil
	}
	part, parts := dl.Part()
	if parts == 0 {
		pl, err = calib.NewLayer(g, n)
		return n, pl, err
	}
	ps, err := calib.GroupParts(g, n)
	if err != nil {
		return n, nil, err
	}
	if len(ps) != parts {
		return n, nil, fmt.Errorf("%d groups, was %d", len(ps), parts)
	}
	return n, ps[part], nil
}

// nodeByName finds a node of g.
func nodeByName(g *graph.Graph, name string) *graph.Node {
	for _, n := range g.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// layerBias returns the bias constant of a Conv/Gemm node ("" when it has
// none or it is not a per-output-channel vector).
func layerBias(g *graph.Graph, n *graph.Node, out int) string {
	d, ok := graph.WeightedOf(n)
	if !ok || d.Bias() == "" {
		return ""
	}
	t, ok := g.Constant(d.Bias())
	if !ok {
		return ""
	}
	ne, err := graph.NumElements(t.Dims)
	if err != nil || ne != int64(out) {
		return ""
	}
	return d.Bias()
}

// Reconstruct re-fits, in graph order, the remaining weights and bias
// of every layer whose input channels the plan removed (a Conv or Gemm
// without a bias is given one, ReconAddBias), by least squares so that
// its outputs on the calibration data match the dense model's: with x̃
// the pruned model's input rows (after the layers before it were
// re-fitted) and x the dense ones,
//
//	W̃ = argmin Σ ‖W̃ x̃ + b̃ − (W_kept x + b_kept)‖²,
//
// solved from Σ x̃ x̃ᵀ (ridge ReconDamping × its mean diagonal) and
// Σ x̃ (W_kept x + b_kept)ᵀ (ridge.go). m is the pruned model (changed
// in place), dense the model before pruning.
func Reconstruct(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int) ([]string, error) {
	return ReconstructBlocks(ctx, m, dense, p, src, batch, false)
}

// ReconstructBlocks is Reconstruct; with blocks, a layer that ends a
// residual block is fitted to the dense block output instead of its own
// (block.go).
func ReconstructBlocks(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int, blocks bool) ([]string, error) {
	return ReconstructFrom(ctx, m, dense, p, src, batch, blocks, nil)
}

// ReconstructFrom is ReconstructBlocks for one step of several: with
// origin (not nil, and without blocks) every layer whose inputs differ
// from the model before the first step is fitted to that model's
// outputs, not to the previous step's (origin.go). origin follows the
// step's plan either way.
func ReconstructFrom(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int, blocks bool, origin *Origin) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("prune: --reconstruct needs calibration data")
	}
	var notes []string
	if origin != nil {
		origin.follow(dense, p)
	}
	var changed []*calib.Layer
	rowsOf := func(l *calib.Layer) []int { return keptRows(l, p) }
	if origin != nil && !blocks {
		dense = origin.Model
		changed = origin.changedLayers(m)
		rowsOf = origin.RowsOf
		notes = append(notes, fmt.Sprintf("%d layers fitted to the unpruned model's outputs", countNodes(changed)))
	} else {
		changed = refitLayers(dense, func(l *calib.Layer) bool { return lostInputs(l, p) })
	}
	targets := map[string]*blockTarget{}
	capture := denseInputs(changed)
	if blocks {
		for _, dl := range changed {
			n, pl, err := prunedLayer(m.Graph, dl)
			if _, parts := dl.Part(); n == nil || err != nil || parts > 0 {
				continue
			}
			if bt := findBlock(m.Graph, n, pl.Out()); bt != nil && dense.Graph.Value(bt.add) != nil {
				targets[n.Name()] = bt
				capture = append(capture, bt.add)
			}
		}
		if len(targets) > 0 {
			notes = append(notes, fmt.Sprintf("%d layers fitted to their residual block's dense output", len(targets)))
		}
	}
	rs, err := openRows(m, dense, capture, src, batch, blocks)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	added := 0
	for i, dl := range changed {
		progress.Report(ctx, "reconstruction", i, len(changed))
		n, pl, err := prunedLayer(m.Graph, dl)
		if n == nil {
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", dl.Node.Name(), err))
			continue
		}
		// A group's rows share the bias with the others: it stays, and
		// the part fits its weights alone (layerBias finds none for it).
		if _, parts := pl.Part(); ReconAddBias && parts == 0 && layerBias(m.Graph, n, pl.Out()) == "" {
			if d, ok := graph.WeightedOf(n); ok && d.HasBiasInput() {
				if _, err := addBias(m, n, pl.Out(), ".reconstructed_bias"); err != nil {
					return nil, err
				}
				if n, pl, err = prunedLayer(m.Graph, dl); err != nil {
					return nil, err
				}
				added++
			}
		}
		rows := rowsOf(dl)
		if len(rows) != pl.Out() {
			return nil, fmt.Errorf("prune: reconstruct %s: %d kept rows, pruned layer has %d", n.Name(), len(rows), pl.Out())
		}
		bias := layerBias(m.Graph, n, pl.Out())
		cols := pl.In()
		if bias != "" {
			cols++
		}
		job, err := newLayerJob(dense, dl, pl, n, rows, bias != "", targets[n.Name()])
		if err != nil {
			return nil, err
		}
		job.fit = newLayerFit(cols, len(rows))
		if err := rs.fill(ctx, job); err != nil {
			return nil, err
		}
		sol, err := job.fit.solve(bias != "")
		if err != nil {
			return nil, fmt.Errorf("prune: reconstruct %s: %w", n.Name(), err)
		}
		calib.CollectAfter(cols)
		w := make([]float64, pl.Out()*pl.In())
		bnew := make([]float64, pl.Out())
		for r := range pl.Out() {
			for j := range pl.In() {
				w[r*pl.In()+j] = sol.At(j, r)
			}
			if bias != "" {
				bnew[r] = sol.At(pl.In(), r)
			}
		}
		if err := pl.SetMatrix(m.Graph, w); err != nil {
			return nil, err
		}
		if bias != "" {
			if err := setVec(m.Graph, bias, bnew); err != nil {
				return nil, err
			}
		}
	}
	if added > 0 {
		notes = append(notes, fmt.Sprintf("%d layers given a bias", added))
	}
	if len(changed) > 0 {
		notes = append(notes, "calibration runs: "+rs.how())
	}
	return notes, nil
}

// denseOutputs returns the rows x·W_keptᵀ + b_kept (the dense layer's
// kept outputs) for dense input rows x.
func denseOutputs(x []float64, wk *mat.Dense, rows []int, bd []float64) []float64 {
	k, in := wk.Dims()
	m := len(x) / in
	out := mat.NewDense(m, k, nil)
	out.Mul(mat.NewDense(m, in, x), wk.T())
	t := out.RawMatrix().Data
	if bd != nil {
		for i := range m {
			for a, r := range rows {
				t[i*k+a] += bd[r]
			}
		}
	}
	return t
}

func denseInputs(ls []*calib.Layer) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range ls {
		if !seen[l.Input()] {
			seen[l.Input()] = true
			out = append(out, l.Input())
		}
	}
	return out
}

// withOnesInto appends a constant 1 to every row of x (cols values
// each), writing into dst's storage where it is large enough.
func withOnesInto(dst, x []float64, cols int) []float64 {
	m := len(x) / cols
	out := slices.Grow(dst[:0], m*(cols+1))
	for r := range m {
		out = append(out, x[r*cols:(r+1)*cols]...)
		out = append(out, 1)
	}
	return out
}

// solveGram solves a S = rhs for the damped Gram matrix a.
func solveGram(a *mat.SymDense, rhs *mat.Dense) (*mat.Dense, error) {
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, fmt.Errorf("input Gram matrix is not positive definite")
	}
	var sol mat.Dense
	if err := ch.SolveTo(&sol, rhs); err != nil {
		return nil, err
	}
	return &sol, nil
}

func constVec(g *graph.Graph, name string) ([]float64, error) {
	v, err := g.ConstantFloat64s(name)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return v, nil
}

func setVec(g *graph.Graph, name string, v []float64) error {
	t, ok := g.Constant(name)
	if !ok {
		return fmt.Errorf("prune: %q is not a constant", name)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return graph.SetFloat32s(t, t.Dims, f)
}
