package importance

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// Data is where data-driven criteria get layer input statistics: a
// calibration source, or (Src nil, DataFree) BatchNormalization
// statistics.
type Data struct {
	Src      *calib.Source
	DataFree bool
	Batch    int
}

// BatchSize is the number of samples per run: Batch (default 64), or the
// model's fixed batch size.
func (d Data) BatchSize() int {
	b := d.Batch
	if b <= 0 {
		b = 64
	}
	if d.Src != nil {
		return d.Src.Fit(b)
	}
	return b
}

// consumerLayers returns the layers (by node name) that own a weight-in
// member of a prunable group, or, with out, a weight-out member too.
func consumerLayers(an *prune.Analysis, out bool) map[string]*calib.Layer {
	return consumerLayersOf(an, out, nil, false)
}

// consumerLayersOf is consumerLayers for the prunable groups that scored
// accepts (all of them when nil). With parts, a grouped Conv reading a
// group's channels is there too, as one layer per group of the Conv
// (calib.GroupParts, keyed by calib.Layer.Key).
func consumerLayersOf(an *prune.Analysis, out bool, scored func(*prune.Group) bool, parts bool) map[string]*calib.Layer {
	g := an.Graph()
	byName := map[string]*graph.Node{}
	for _, n := range g.Nodes {
		byName[n.Name()] = n
	}
	res := map[string]*calib.Layer{}
	for _, grp := range an.Prunable() {
		if scored != nil && !scored(grp) {
			continue
		}
		for _, m := range grp.Members {
			if m.Kind != prune.KindWeightIn && !(out && m.Kind == prune.KindWeightOut) {
				continue
			}
			n := byName[m.Node]
			if n == nil || res[m.Node] != nil {
				continue
			}
			if l, err := calib.NewLayer(g, n); err == nil && l.Weight == m.Tensor {
				res[m.Node] = l
				continue
			}
			if !parts || m.Kind != prune.KindWeightIn {
				continue
			}
			if ps, err := calib.GroupParts(g, n); err == nil && ps[0].Weight == m.Tensor {
				for _, l := range ps {
					res[l.Key()] = l
				}
			}
		}
	}
	return res
}

// sortedNames returns map keys in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// captureLayerInputs runs the model over the calibration data once and
// hands each layer its input rows per batch.
func captureLayerInputs(ctx context.Context, m *graph.Model, d Data, layers map[string]*calib.Layer, visit func(name string, l *calib.Layer, rows []float64) error) error {
	if d.Src == nil {
		return fmt.Errorf("importance: this criterion needs calibration data (--calib)")
	}
	var names []string
	seen := map[string]bool{}
	for _, k := range sortedNames(layers) {
		in := layers[k].Input()
		if !seen[in] {
			seen[in] = true
			names = append(names, in)
		}
	}
	// One rows buffer, reused layer after layer and batch after batch
	// (no visitor keeps the rows it is given): it grows to the largest
	// layer's rows of a batch.
	var buf []float64
	return calib.Stream(ctx, m, d.Src, names, d.BatchSize(), func(vals map[string]tensor.Dense, _, _ int) error {
		for _, k := range sortedNames(layers) {
			l := layers[k]
			x, ok := vals[l.Input()]
			if !ok {
				continue
			}
			rows, err := l.RowsInto(buf, x)
			if err != nil {
				return err
			}
			buf = rows
			if err := visit(k, l, rows); err != nil {
				return err
			}
		}
		return nil
	})
}

// Hessians returns the input statistics per layer, whose Hessian is
// H = (2/n) Σ x xᵀ (Gram.TakeDampedInverse inverts it), from calibration
// data or, data-free, from BatchNormalization statistics. notes says which layers had no
// statistics.
func Hessians(ctx context.Context, m *graph.Model, d Data, layers map[string]*calib.Layer) (map[string]*calib.Gram, []string, error) {
	out := map[string]*calib.Gram{}
	if d.Src == nil {
		if !d.DataFree {
			return nil, nil, fmt.Errorf("importance: this criterion needs --calib data or --data-free")
		}
		var notes []string
		for _, k := range sortedNames(layers) {
			h, err := bnHessian(m.Graph, layers[k])
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s: %v", k, err))
				continue
			}
			out[k] = calib.GramOf(h, layers[k].In())
		}
		if len(out) == 0 {
			return nil, notes, fmt.Errorf("importance: %w: --data-free needs BatchNormalization nodes feeding the pruned layers (the model has none reachable: batch norms folded?); give --calib data", prune.ErrInvalidOption)
		}
		return out, notes, nil
	}
	for k, l := range layers {
		out[k] = calib.NewGram(l.In())
	}
	err := captureLayerInputs(ctx, m, d, layers, func(k string, _ *calib.Layer, rows []float64) error {
		out[k].Add(rows)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, nil, nil
}

// FeatureNorms returns ‖X_j‖₂ per input column of each layer (Wanda).
func FeatureNorms(ctx context.Context, m *graph.Model, d Data, layers map[string]*calib.Layer) (map[string][]float64, error) {
	sums := map[string]*calib.SquareSums{}
	for k, l := range layers {
		sums[k] = calib.NewSquareSums(l.In())
	}
	err := captureLayerInputs(ctx, m, d, layers, func(k string, _ *calib.Layer, rows []float64) error {
		sums[k].Add(rows)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]float64{}
	for k, s := range sums {
		out[k] = s.Norms()
	}
	return out, nil
}

// moments are per-channel mean and variance of a value, under the
// data-free model: every channel Gaussian before a rectifier, entries
// independent across channels and positions.
type moments struct{ mean, vari []float64 }

// bnHessian builds H = 2·E[x xᵀ] for a layer whose input is traced back
// to BatchNormalization outputs: a BN output channel is N(β, γ²) (its
// input normalised by the running statistics), Relu takes rectified
// Gaussian moments, Add sums independent moments, pools, Flatten,
// Identity and Dropout keep them. Entries of different channels or
// positions are independent: E[x_i x_j] = μ_i μ_j off the diagonal and
// μ_i² + σ_i² on it (padding is ignored).
func bnHessian(g *graph.Graph, l *calib.Layer) ([]float64, error) {
	mo, err := traceMoments(g, l.Input(), 0)
	if err != nil {
		return nil, err
	}
	c := l.In()
	if len(mo.mean)*l.Inner != c {
		return nil, fmt.Errorf("traced %d channels for %d columns", len(mo.mean), c)
	}
	mu := make([]float64, c)
	dg := make([]float64, c)
	for j := range c {
		ch := j / l.Inner
		mu[j], dg[j] = mo.mean[ch], mo.vari[ch]
	}
	h := make([]float64, c*c)
	for i := range c {
		for j := range c {
			v := mu[i] * mu[j]
			if i == j {
				v += dg[i]
			}
			h[i*c+j] = 2 * v
		}
	}
	return h, nil
}

func traceMoments(g *graph.Graph, v string, depth int) (moments, error) {
	if depth > 64 {
		return moments{}, fmt.Errorf("trace too deep")
	}
	p := g.Producer(v)
	if p == nil {
		return moments{}, fmt.Errorf("input %q is not produced by a BatchNormalization", v)
	}
	switch p.Op() {
	case "BatchNormalization":
		gamma, err1 := constFloats(g, p.Input(1))
		beta, err2 := constFloats(g, p.Input(2))
		if err1 != nil || err2 != nil || len(gamma) != len(beta) {
			return moments{}, fmt.Errorf("%s: scale and bias are not constants", p)
		}
		mo := moments{mean: make([]float64, len(gamma)), vari: make([]float64, len(gamma))}
		for i := range gamma {
			mo.mean[i], mo.vari[i] = beta[i], gamma[i]*gamma[i]
		}
		return mo, nil
	case "Relu":
		in, err := traceMoments(g, p.Input(0), depth+1)
		if err != nil {
			return in, err
		}
		out := moments{mean: make([]float64, len(in.mean)), vari: make([]float64, len(in.mean))}
		for i := range in.mean {
			out.mean[i], out.vari[i] = rectified(in.mean[i], in.vari[i])
		}
		return out, nil
	case "Add":
		a, err := traceMoments(g, p.Input(0), depth+1)
		if err != nil {
			return a, err
		}
		b, err := traceMoments(g, p.Input(1), depth+1)
		if err != nil {
			return b, err
		}
		if len(a.mean) != len(b.mean) {
			return moments{}, fmt.Errorf("%s: operands of %d and %d channels", p, len(a.mean), len(b.mean))
		}
		for i := range a.mean {
			a.mean[i] += b.mean[i]
			a.vari[i] += b.vari[i]
		}
		return a, nil
	case "GlobalAveragePool", "MaxPool", "AveragePool", "Flatten", "Identity", "Dropout":
		return traceMoments(g, p.Input(0), depth+1)
	}
	return moments{}, fmt.Errorf("input %q comes from %s, which the BatchNormalization trace does not follow", v, p.Op())
}

// rectified returns the mean and variance of max(0, a) for a ~ N(m, v).
func rectified(m, v float64) (float64, float64) {
	s := math.Sqrt(max(v, 0))
	if s == 0 {
		r := max(m, 0)
		return r, 0
	}
	z := m / s
	cdf := 0.5 * math.Erfc(-z/math.Sqrt2)
	pdf := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
	mean := m*cdf + s*pdf
	second := (m*m+v)*cdf + m*s*pdf
	return mean, max(second-mean*mean, 0)
}

func constFloats(g *graph.Graph, name string) ([]float64, error) {
	for p := g.Producer(name); p != nil && p.Op() == "Identity"; p = g.Producer(name) {
		name = p.Input(0)
	}
	return g.ConstantFloat64s(name)
}
