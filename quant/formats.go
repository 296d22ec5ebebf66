package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// pickLayers returns the layers of m (FindLayers) a format rewrites,
// those it keeps; each other one is listed in rep.Skipped as
// "node (op<why>)".
func pickLayers(m *graph.Model, o *Options, rep *Report, why string, keep func(*Layer) bool) []*Layer {
	var out []*Layer
	for _, l := range FindLayers(m, o.Exclude) {
		if keep(l) {
			out = append(out, l)
			continue
		}
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s (%s%s)", l.Node.Name(), l.Op(), why))
	}
	return out
}

// readAsWeight reports whether a constant is read as a layer weight or
// bias or a normalisation parameter.
func readAsWeight(v *graph.Value) bool {
	for _, c := range v.Consumers {
		if c.Domain() != "" {
			continue
		}
		if graph.IsWeighted(c) || c.Op() == "BatchNormalization" || c.Op() == "LayerNormalization" {
			return true
		}
	}
	return false
}

// quantizeWeightOnly writes MatMulNBits or QDQ int4.
func quantizeWeightOnly(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if _, err := GemmToMatMul(m); err != nil {
		return err
	}
	if o.Format == FormatQDQ4 {
		if err := raiseOpset(m, qdq4Opset, "DequantizeLinear with INT4 blocks", o, rep); err != nil {
			return err
		}
	}
	getData := o.lazyDataset(m, rep)
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	layers := pickLayers(m, o, rep, ": weight-only formats rewrite MatMul; qdq4 with --conv also 2-D Conv", func(l *Layer) bool {
		return l.Op() == "MatMul" || l.Op() == "Conv" && o.Format == FormatQDQ4 && o.QuantizeConv && len(l.Dims) == 4
	})
	// Each layer is packed as soon as it is quantized, so only its codes
	// are held at a time.
	e := newEditor(m)
	err := quantizeEach(ctx, m, layers, o, rep, getData, func(i int, q *Quantized) error {
		if o.Format == FormatNBits {
			return e.emitNBits(layers[i], q, o.AccuracyLevel)
		}
		return e.emitQDQ4(layers[i], q)
	})
	if err != nil {
		return err
	}
	return e.apply()
}

// quantizeQDQ writes static int8 QDQ.
func quantizeQDQ(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if o.PerTensor {
		if err := raiseOpset(m, qdqMinOpset, "QuantizeLinear", o, rep); err != nil {
			return err
		}
	} else if err := raiseOpset(m, qdqOpset, "per-channel QuantizeLinear (axis)", o, rep); err != nil {
		return err
	}
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	rep.Calibrate = o.Calibrate
	if n, err := FoldBatchNorm(m); err != nil {
		return err
	} else if n > 0 {
		rep.note(o, "folded %d BatchNormalization nodes into their Convs", n)
	}
	// Gemm → MatMul (+ Add): onnxruntime runs a quantized MatMul with a
	// float output as MatMulIntegerToFloat wherever it sits, while its
	// QDQ Gemm fusion missed the attention output projections of the ViT
	// fixtures (left float, reading DequantizeLinear weights).
	layers := FindLayers(m, o.Exclude)
	plan := planQDQ(m, layers)
	data, err := o.dataset(m, rep)
	if err != nil {
		return err
	}
	ranges, err := CalibrateRanges(ctx, m, data, plan.own, o.Calibrate, o.Percentile, o.BatchSize)
	if err != nil {
		return err
	}
	em := &qdqEmitter{plan: plan, grids: map[string]Grid{}, params: map[string][2]string{}}
	for _, t := range plan.own {
		r, ok := ranges[t]
		if !ok {
			return fmt.Errorf("quant: qdq: no calibration values for %q", t)
		}
		if em.grids[t], err = Uint8Asym.Fit(r.Lo, r.Hi); err != nil {
			return fmt.Errorf("quant: qdq: tensor %q: %w", t, err)
		}
	}
	rep.Activation = len(plan.marked)
	getData := func() (Dataset, error) { return data, nil }
	if o.Method == MethodRTN {
		// RTN reads only weights: fold first and emit each layer as it
		// is rounded, so that one layer's codes are held at a time.
		if err := plan.applyFolds(m); err != nil {
			return err
		}
		em.e = newEditor(m)
		err = quantizeEach(ctx, m, layers, o, rep, getData, func(i int, q *Quantized) error {
			return em.emitWeight(m, layers[i], q)
		})
		if err != nil {
			return err
		}
	} else {
		// GPTQ runs the model: the folds come after its calibration.
		qs, err := quantizeWeights(ctx, m, layers, o, rep, getData)
		if err != nil {
			return err
		}
		if err := plan.applyFolds(m); err != nil {
			return err
		}
		em.e = newEditor(m)
		for i, l := range layers {
			if err := em.emitWeight(m, l, qs[i]); err != nil {
				return err
			}
		}
	}
	if err := em.emitActivations(m); err != nil {
		return err
	}
	return em.e.apply()
}
