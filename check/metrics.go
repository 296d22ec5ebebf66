package check

import (
	"fmt"
	"math"
	"slices"

	"github.com/pare-dev/pare/tensor"
)

// Metrics compare one output of the candidate with the reference.
type Metrics struct {
	// Elements is the number of element pairs compared.
	Elements int64 `json:"elements"`
	// MaxAbs and MeanAbs are the largest and mean |cand−ref|.
	MaxAbs  Number `json:"max_abs"`
	MeanAbs Number `json:"mean_abs"`
	// RelL2 is ‖cand−ref‖₂ / ‖ref‖₂ over the whole output.
	RelL2 Number `json:"rel_l2"`
	// Cosine is the cosine similarity of the flattened outputs.
	Cosine Number `json:"cosine"`
	// Top1 is the fraction of rows (all axes but the last) whose argmax
	// over the last axis agrees; nil when the last axis has fewer than
	// two entries.
	Top1 *Number `json:"top1"`
	Rows int64   `json:"rows"`
	// AllCloseViolations counts elements outside atol + rtol·|ref|
	// (non-finite mismatches included); -1 when no allclose gate is set.
	AllCloseViolations int64 `json:"allclose_violations"`
	// RefNaN and CandNaN count NaN elements; InfMismatch counts pairs
	// where one side is infinite and the other differs.
	RefNaN      int64 `json:"ref_nan"`
	CandNaN     int64 `json:"cand_nan"`
	InfMismatch int64 `json:"inf_mismatch"`
}

// accumulator gathers Metrics for one output over batches.
type accumulator struct {
	allclose *AllClose

	n, finite                     int64
	sumAbs, maxAbs                float64
	sumSqDiff, sumSqRef, sumSqCan float64
	dot                           float64
	violations                    int64
	refNaN, candNaN, infMismatch  int64

	top1Applies bool
	rows, agree int64
	rowNaNCand  int64
	shapeTail   []int64
	rank        int
	dim0        int64 // axis 0 summed over batches
}

func newAccumulator(ac *AllClose) *accumulator { return &accumulator{allclose: ac, top1Applies: true} }

// add folds in one batch of reference and candidate values of the same
// shape, and returns the per-row argmaxes (nil when top-1 does not apply)
// for accuracy.
func (a *accumulator) add(ref, cand tensor.Dense) (refArg, candArg []int64, err error) {
	if !slices.Equal(ref.Shape, cand.Shape) {
		return nil, nil, fmt.Errorf("%w: shapes differ: reference %v, candidate %v", ErrIncompatible, ref, cand)
	}
	if a.shapeTail == nil {
		a.shapeTail, a.rank = tail(ref.Shape), len(ref.Shape)
	} else if len(ref.Shape) != a.rank || !slices.Equal(a.shapeTail, tail(ref.Shape)) {
		return nil, nil, fmt.Errorf("%w: output shape changed between batches: %v", ErrIncompatible, ref)
	}
	r, err := ref.Float64s()
	if err != nil {
		return nil, nil, err
	}
	c, err := cand.Float64s()
	if err != nil {
		return nil, nil, err
	}
	a.addValues(r, c)
	if len(ref.Shape) > 0 {
		a.dim0 += ref.Shape[0]
	}
	width := int64(0)
	if len(ref.Shape) > 0 {
		width = ref.Shape[len(ref.Shape)-1]
	}
	if width < 2 {
		a.top1Applies = false
		return nil, nil, nil
	}
	rows := int64(len(r)) / width
	refArg, candArg = make([]int64, rows), make([]int64, rows)
	for i := range rows {
		rr, cr := r[i*width:(i+1)*width], c[i*width:(i+1)*width]
		refArg[i], candArg[i] = argmax(rr), argmax(cr)
		if hasNaN(cr) {
			a.rowNaNCand++
		}
		if refArg[i] == candArg[i] && refArg[i] >= 0 {
			a.agree++
		}
	}
	a.rows += rows
	return refArg, candArg, nil
}

func (a *accumulator) addValues(r, c []float64) {
	for i := range r {
		rv, cv := r[i], c[i]
		a.n++
		rn, cn := math.IsNaN(rv), math.IsNaN(cv)
		if rn || cn {
			if rn {
				a.refNaN++
			}
			if cn {
				a.candNaN++
			}
			a.violations++
			continue
		}
		if math.IsInf(rv, 0) || math.IsInf(cv, 0) {
			if rv != cv {
				a.infMismatch++
				a.violations++
			}
			continue
		}
		a.finite++
		d := math.Abs(cv - rv)
		a.sumAbs += d
		a.maxAbs = max(a.maxAbs, d)
		a.sumSqDiff += d * d
		a.sumSqRef += rv * rv
		a.sumSqCan += cv * cv
		a.dot += rv * cv
		if a.allclose != nil && !(d <= a.allclose.ATol+a.allclose.RTol*math.Abs(rv)) {
			a.violations++
		}
	}
}

// metrics finalises the accumulated values.
func (a *accumulator) metrics() Metrics {
	m := Metrics{
		Elements:           a.n,
		RefNaN:             a.refNaN,
		CandNaN:            a.candNaN,
		InfMismatch:        a.infMismatch,
		AllCloseViolations: -1,
	}
	if a.allclose != nil {
		m.AllCloseViolations = a.violations
	}
	switch {
	case a.refNaN+a.candNaN > 0:
		nan := Number(math.NaN())
		m.MaxAbs, m.MeanAbs, m.RelL2, m.Cosine = nan, nan, nan, nan
	case a.infMismatch > 0:
		inf := Number(math.Inf(1))
		m.MaxAbs, m.MeanAbs, m.RelL2, m.Cosine = inf, inf, inf, Number(math.NaN())
	default:
		m.MaxAbs = Number(a.maxAbs)
		if a.n > 0 {
			m.MeanAbs = Number(a.sumAbs / float64(a.n))
		}
		m.RelL2 = Number(relL2(a.sumSqDiff, a.sumSqRef))
		m.Cosine = Number(cosine(a.dot, a.sumSqRef, a.sumSqCan))
	}
	if a.top1Applies && a.rows > 0 {
		t := Number(float64(a.agree) / float64(a.rows))
		m.Top1 = &t
		m.Rows = a.rows
	}
	return m
}

// relL2 is sqrt(Σd²/Σr²), with 0/0 = 0 and x/0 = +Inf.
func relL2(sumSqDiff, sumSqRef float64) float64 {
	if sumSqRef == 0 {
		if sumSqDiff == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return math.Sqrt(sumSqDiff) / math.Sqrt(sumSqRef)
}

// cosine is dot/(‖r‖‖c‖): 1 when both are zero, 0 when one is, clamped
// to [-1, 1] against rounding.
func cosine(dot, sumSqRef, sumSqCand float64) float64 {
	switch {
	case sumSqRef == 0 && sumSqCand == 0:
		return 1
	case sumSqRef == 0 || sumSqCand == 0:
		return 0
	}
	c := dot / (math.Sqrt(sumSqRef) * math.Sqrt(sumSqCand))
	return max(-1, min(1, c))
}

// Top1 is the fraction of labels that equal the argmax of their row of
// logits, a [len(labels), classes] block in row-major order. A row with a
// NaN never counts as right.
func Top1(logits []float32, labels []int64) float64 {
	if len(labels) == 0 {
		return 0
	}
	classes := len(logits) / len(labels)
	right := 0
	for i, y := range labels {
		if p := argmax(logits[i*classes : (i+1)*classes]); p >= 0 && p == y {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}

// Predictions returns the argmax of each row of logits, a [rows,
// classes] block in row-major order (-1 for a row holding a NaN): the
// labels a reference model assigns, for top-1 agreement with Top1.
func Predictions(logits []float32, rows int) []int64 {
	if rows == 0 {
		return nil
	}
	classes := len(logits) / rows
	out := make([]int64, rows)
	for i := range out {
		out[i] = argmax(logits[i*classes : (i+1)*classes])
	}
	return out
}

// argmax returns the index of the largest value (the first on ties, as
// numpy does), or -1 when the row holds a NaN: such a row never agrees.
func argmax[F float32 | float64](row []F) int64 {
	best := int64(-1)
	for i, v := range row {
		if v != v { // NaN
			return -1
		}
		if best < 0 || v > row[best] {
			best = int64(i)
		}
	}
	return best
}

func hasNaN(row []float64) bool {
	return slices.ContainsFunc(row, math.IsNaN)
}

// tail is the shape without its first (batch) axis.
func tail(shape []int64) []int64 {
	if len(shape) == 0 {
		return []int64{}
	}
	return slices.Clone(shape[1:])
}
