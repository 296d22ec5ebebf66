package quant

import (
	"fmt"
	"math"

	"github.com/pare-dev/pare/upgrade"
)

// LayerReport describes one quantized layer.
type LayerReport struct {
	Node        string  `json:"node"`
	Op          string  `json:"op"`
	Weight      string  `json:"weight"`
	Shape       []int64 `json:"shape"`
	Bits        int     `json:"bits"`
	Symmetric   bool    `json:"symmetric"`
	Granularity string  `json:"granularity"`
	Method      string  `json:"method"`
	ScaleMin    float32 `json:"scale_min"`
	ScaleMax    float32 `json:"scale_max"`
	// WeightError is ‖W − Ŵ‖/‖W‖.
	WeightError float64 `json:"weight_rel_error"`
	// OutputError is ‖XW − XŴ‖/‖XW‖ over the calibration inputs of the
	// layer, when they were captured (GPTQ and RSQ), else absent.
	OutputError *float64 `json:"output_rel_error,omitempty"`
	// HessianRows and HessianCols give the calibration rows (tokens or
	// pixels) behind a GPTQ/RSQ layer's Hessian and its width; fewer
	// rows than columns leave it rank-deficient.
	HessianRows int `json:"hessian_rows,omitempty"`
	HessianCols int `json:"hessian_cols,omitempty"`
}

// Report describes a quantization run.
type Report struct {
	Format     string        `json:"format"`
	Method     string        `json:"method"`
	Rotate     string        `json:"rotate"`
	Calibrate  string        `json:"calibrate,omitempty"`
	Samples    int           `json:"calibration_samples,omitempty"`
	Layers     []LayerReport `json:"layers"`
	Skipped    []string      `json:"skipped,omitempty"`
	Activation int           `json:"quantized_activations,omitempty"`
	Notes      []string      `json:"notes,omitempty"`
	// Upgrade is set when the format needed a newer opset than the
	// model's and the model was upgraded first.
	Upgrade *upgrade.Report `json:"opset_upgrade,omitempty"`
}

func (r *Report) note(o *Options, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.Notes = append(r.Notes, s)
	o.Logf("%s", s)
}

func layerReport(l *Layer, w Matrix, q *Quantized, method string, outErr *float64) LayerReport {
	lr := LayerReport{
		Node: l.Node.Name(), Op: l.Op(), Weight: l.Weight, Shape: l.Dims,
		Bits: q.Scheme.Bits, Symmetric: q.Scheme.Symmetric, Granularity: q.Gran.String(), Method: method,
		ScaleMin: float32(math.Inf(1)), OutputError: outErr,
	}
	for _, g := range q.Grids {
		lr.ScaleMin, lr.ScaleMax = min(lr.ScaleMin, g.Scale), max(lr.ScaleMax, g.Scale)
	}
	num, den := 0.0, 0.0
	span := q.Gran.groupCols(q.Cols)
	for r := range q.Rows {
		for c0 := 0; c0 < q.Cols; c0 += span {
			g := q.Grids[q.GridIndex(r, c0)]
			lo, hi := r*q.Cols+c0, r*q.Cols+min(c0+span, q.Cols)
			for i, code := range q.Q[lo:hi] {
				a := float64(w.Data[lo+i])
				x := a - float64(Dequantize(code, g))
				num += x * x
				den += a * a
			}
		}
	}
	if den > 0 {
		lr.WeightError = math.Sqrt(num / den)
	}
	return lr
}
