package quant

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// Calibration methods for activation ranges.
const (
	CalibMinMax     = "minmax"
	CalibPercentile = "percentile"
)

// histBins is the number of bins of a percentile histogram; with 2048
// bins a threshold is placed within 1/2048 of the observed range.
const histBins = 2048

// capture runs the float model m over data with names captured, through
// calib.Stream: runs sized to calib.RunBudget, names split into passes
// when one sample's values exceed it. visit gets each run's values (some
// of the names), its first sample and its number of samples; only the
// statistics visit keeps stay in memory.
func capture(ctx context.Context, m *graph.Model, data Dataset, names []string, batch int, visit func(vals map[string]tensor.Dense, first, rows int) error) error {
	if err := calib.Stream(ctx, m, data, names, max(batch, 1), visit); err != nil {
		return fmt.Errorf("quant: calibration: %w", err)
	}
	return nil
}

// Range is an observed or chosen interval of a tensor's values.
type Range struct{ Lo, Hi float32 }

// histogram counts values in histBins equal bins over [lo, hi].
type histogram struct {
	lo, hi float64
	counts []float64
	total  float64
}

func newHistogram(r Range) *histogram {
	return &histogram{lo: float64(r.Lo), hi: float64(r.Hi), counts: make([]float64, histBins)}
}

func (h *histogram) add(vals []float32) {
	width := h.hi - h.lo
	for _, v := range vals {
		i := 0
		if width > 0 {
			i = int((float64(v) - h.lo) / width * histBins)
		}
		h.counts[max(0, min(histBins-1, i))]++
	}
	h.total += float64(len(vals))
}

// quantile returns the value below which fraction p of the counts lie,
// interpolating within the bin.
func (h *histogram) quantile(p float64) float64 {
	target := p * h.total
	acc := 0.0
	width := (h.hi - h.lo) / histBins
	for i, c := range h.counts {
		if acc+c >= target && c > 0 {
			return h.lo + width*(float64(i)+(target-acc)/c)
		}
		acc += c
	}
	return h.hi
}

// CalibrateRanges returns a range for each named float tensor of m over
// data: the observed min and max, or (percentile) the pct and 100−pct
// percentiles from a histogram over the observed range, which needs a
// second pass.
func CalibrateRanges(ctx context.Context, m *graph.Model, data Dataset, names []string, method string, pct float64, batch int) (map[string]Range, error) {
	ranges := map[string]Range{}
	err := capture(ctx, m, data, names, batch, func(vals map[string]tensor.Dense, _, _ int) error {
		for name, d := range vals {
			if !d.DType.IsFloat() {
				continue
			}
			v, err := d.Float32s()
			if err != nil {
				return fmt.Errorf("quant: calibration tensor %q: %w", name, err)
			}
			r, seen := ranges[name]
			if !seen {
				r = Range{Lo: float32(math.Inf(1)), Hi: float32(math.Inf(-1))}
			}
			for _, x := range v {
				if !finite(x) {
					return fmt.Errorf("quant: calibration tensor %q: %w: value %v", name, ErrInvalid, x)
				}
				r.Lo, r.Hi = min(r.Lo, x), max(r.Hi, x)
			}
			ranges[name] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, r := range ranges {
		if r.Lo > r.Hi { // no values seen (empty tensors)
			ranges[name] = Range{}
		}
	}
	switch method {
	case CalibMinMax, "":
		return ranges, nil
	case CalibPercentile:
	default:
		return nil, fmt.Errorf("quant: %w: calibration method %q (want minmax or percentile)", ErrUnsupported, method)
	}
	if pct <= 50 || pct > 100 {
		return nil, fmt.Errorf("quant: %w: percentile %v (want 50 < p ≤ 100)", ErrInvalid, pct)
	}
	hists := map[string]*histogram{}
	for name, r := range ranges {
		hists[name] = newHistogram(r)
	}
	err = capture(ctx, m, data, names, batch, func(vals map[string]tensor.Dense, _, _ int) error {
		for name, d := range vals {
			if h := hists[name]; h != nil {
				v, err := d.Float32s()
				if err != nil {
					return err
				}
				h.add(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, h := range hists {
		if h.total == 0 {
			continue
		}
		p := pct / 100
		ranges[name] = Range{Lo: float32(h.quantile(1 - p)), Hi: float32(h.quantile(p))}
	}
	return ranges, nil
}
