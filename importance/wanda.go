package importance

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// Wanda scores a weight by |w_ij|·‖X_j‖₂, its magnitude times the norm of
// the input feature it multiplies over the calibration data (Conv: the
// feature is one (input channel, kernel offset) of the unfolded patches).
// Structured: a member's score for index i is the mean of |w|·‖X‖ over
// the index's slice (output rows of the producer, input columns of a
// consumer); member scores are divided by their mean over the indices
// they cover and averaged, as for magnitude. Groups with no weight of a
// layer with statistics fall back to magnitude (L1).
type Wanda struct {
	layers map[string]*calib.Layer
	norms  map[string][]float64
	w      map[string][]float64
	Notes  []string
}

// NewWanda collects the input feature norms of every Conv/Gemm/MatMul
// layer that holds a weight of a prunable group.
func NewWanda(ctx context.Context, m *graph.Model, an *prune.Analysis, d Data) (*Wanda, error) {
	wa := &Wanda{layers: consumerLayers(an, true), w: map[string][]float64{}}
	var err error
	if wa.norms, err = FeatureNorms(ctx, m, d, wa.layers); err != nil {
		return nil, err
	}
	for k, l := range wa.layers {
		if wa.w[k], err = l.Matrix(m.Graph); err != nil {
			return nil, err
		}
	}
	return wa, nil
}

// Name implements Scorer.
func (*Wanda) Name() string { return "wanda" }

// Score implements Scorer.
func (wa *Wanda) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	total := make([]float64, grp.Size)
	count := make([]int, grp.Size)
	onlyIn := headKind(grp.Kind) && wa.hasConsumer(grp)
	for _, mem := range grp.Members {
		l := wa.layers[mem.Node]
		if l == nil || l.Weight != mem.Tensor || wa.norms[mem.Node] == nil {
			continue
		}
		if onlyIn && mem.Kind != prune.KindWeightIn {
			continue
		}
		var s []float64
		switch {
		case mem.Kind == prune.KindWeightIn && mem.Axis == l.InAxis():
			s = wa.inScores(mem, l, grp.Size)
		case mem.Kind == prune.KindWeightOut && mem.Axis != l.InAxis():
			s = wa.outScores(mem, l, grp.Size)
		default:
			continue
		}
		addNormalised(total, count, s)
	}
	covered := false
	for i := range total {
		if count[i] > 0 {
			total[i] /= float64(count[i])
			covered = true
		}
	}
	if !covered {
		wa.Notes = append(wa.Notes, fmt.Sprintf("group %d (%s): no layer with statistics, scored by magnitude", grp.ID, grp.Name))
		return Magnitude{P: 1}.Score(g, grp)
	}
	return total, nil
}

// inScores: mean over the index's columns (all rows) of |w|·‖X_col‖.
func (wa *Wanda) inScores(mem prune.Member, l *calib.Layer, size int) []float64 {
	w, nrm := wa.w[mem.Node], wa.norms[mem.Node]
	out, in := l.Out(), l.In()
	sum := make([]float64, size)
	cnt := make([]float64, size)
	for p, idx := range mem.Map {
		if idx < 0 || idx >= size {
			continue
		}
		for _, c := range l.Columns([]int{p}) {
			for r := range out {
				sum[idx] += math.Abs(w[r*in+c]) * nrm[c]
			}
			cnt[idx] += float64(out)
		}
	}
	return means(sum, cnt)
}

// outScores: mean over the index's rows (all columns) of |w|·‖X_col‖.
func (wa *Wanda) outScores(mem prune.Member, l *calib.Layer, size int) []float64 {
	w, nrm := wa.w[mem.Node], wa.norms[mem.Node]
	in := l.In()
	sum := make([]float64, size)
	cnt := make([]float64, size)
	for r, idx := range mem.Map {
		if idx < 0 || idx >= size || r >= l.Out() {
			continue
		}
		for c := range in {
			sum[idx] += math.Abs(w[r*in+c]) * nrm[c]
		}
		cnt[idx] += float64(in)
	}
	return means(sum, cnt)
}

// ElementScores returns |w_ij|·‖X_j‖₂ for every weight of the layer of
// the given node, in the stored weight's layout (unstructured Wanda).
func (wa *Wanda) ElementScores(node string) ([]float64, bool) {
	l := wa.layers[node]
	if l == nil || wa.norms[node] == nil {
		return nil, false
	}
	w, nrm := wa.w[node], wa.norms[node]
	out, in := l.Out(), l.In()
	s := make([]float64, out*in)
	for r := range out {
		for c := range in {
			v := math.Abs(w[r*in+c]) * nrm[c]
			if l.T {
				s[c*out+r] = v
			} else {
				s[r*in+c] = v
			}
		}
	}
	return s, true
}

// means divides sums by counts; NaN where the count is zero.
func means(sum, cnt []float64) []float64 {
	for i := range sum {
		if cnt[i] == 0 {
			sum[i] = math.NaN()
		} else {
			sum[i] /= cnt[i]
		}
	}
	return sum
}
