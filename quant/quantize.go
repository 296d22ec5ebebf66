package quant

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
)

// Quantize rewrites m in place into the chosen format and returns what
// it did.
func Quantize(ctx context.Context, m *graph.Model, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Format: opts.Format, Method: opts.Method, Rotate: opts.Rotate}
	// Weights held in Constant nodes are quantized like initializers; a
	// model that keeps every constant in Constant nodes gets its
	// constants back in that form.
	constForm := len(m.Graph.Proto.Initializer) == 0
	if _, err := m.BypassConstantIdentities(); err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	lifted, err := m.ConstantsToInitializers(readAsWeight)
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	switch opts.Format {
	case FormatQDQ:
		err = quantizeQDQ(ctx, m, &opts, rep)
	case FormatDynamic:
		err = quantizeDynamic(ctx, m, &opts, rep)
	default:
		err = quantizeWeightOnly(ctx, m, &opts, rep)
	}
	if err != nil {
		return nil, err
	}
	if len(rep.Layers) == 0 {
		why := ""
		if len(rep.Skipped) > 0 {
			why = fmt.Sprintf(" (%d left float, first: %s)", len(rep.Skipped), rep.Skipped[0])
		}
		return nil, fmt.Errorf("quant: %s: %w: 0 layers quantized%s, the model would not change", opts.Format, ErrNothingQuantized, why)
	}
	switch {
	case constForm && lifted > 0:
		if err := m.InitializersToConstants(); err != nil {
			return nil, fmt.Errorf("quant: %w", err)
		}
	case lifted > 0:
		rep.note(&opts, "%d weights held in Constant nodes are stored as initializers", lifted)
	}
	return rep, nil
}

// quantizeWeights quantizes each layer's weight with the chosen method
// and returns the results in layer order.
func quantizeWeights(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, data func() (Dataset, error)) ([]*Quantized, error) {
	var hess map[*Layer]*Hessian
	if o.Method != MethodRTN {
		d, err := data()
		if err != nil {
			return nil, err
		}
		var weights map[*Layer]TokenWeights
		if o.Method == MethodRSQ {
			if weights, err = rsqWeights(ctx, m, layers, d, o, rep); err != nil {
				return nil, err
			}
		}
		if o.Sequential {
			return quantizeSequential(ctx, m, layers, o, rep, d, weights)
		}
		if hess, err = CollectHessians(ctx, m, layers, d, weights, o.BatchSize); err != nil {
			return nil, err
		}
	}
	out := make([]*Quantized, len(layers))
	if hess == nil {
		// RTN: layers are independent; quantize them in parallel.
		reps := make([]LayerReport, len(layers))
		errs := make([]error, len(layers))
		var wg sync.WaitGroup
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		var finished atomic.Int64
		for i, l := range layers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				defer func() { progress.Report(ctx, "rtn layers", int(finished.Add(1)), len(layers)) }()
				w, err := l.Matrix(m)
				if err != nil {
					errs[i] = err
					return
				}
				s, g := o.layerScheme(l)
				q, err := RTN(w, s, g)
				if err != nil {
					errs[i] = fmt.Errorf("quant: layer %s: %w", l.Node, err)
					return
				}
				out[i], reps[i] = q, layerReport(l, w, q, o.Method, nil)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		rep.Layers = append(rep.Layers, reps...)
		return out, nil
	}
	for i, l := range layers {
		progress.Report(ctx, o.Method+" layers", i, len(layers))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := l.Matrix(m)
		if err != nil {
			return nil, err
		}
		q, lr, err := o.quantizeLayer(l, w, hess[l])
		if err != nil {
			return nil, err
		}
		out[i] = q
		rep.Layers = append(rep.Layers, lr)
	}
	return out, nil
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quantizeLayer quantizes one layer's weights: GPTQ when a Hessian was
// collected for it, RTN otherwise, with its report row.
func (o Options) quantizeLayer(l *Layer, w Matrix, h *Hessian) (*Quantized, LayerReport, error) {
	s, g := o.layerScheme(l)
	var q *Quantized
	var outErr *float64
	var err error
	if h != nil {
		q, err = GPTQ(w, h, s, g, GPTQOptions{Damp: o.Damp, ActOrder: o.ActOrder})
		if err == nil {
			e := h.OutputError(w, q.Dequantize())
			outErr = &e
		}
	} else {
		q, err = RTN(w, s, g)
	}
	if err != nil {
		return nil, LayerReport{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	return q, layerReport(l, w, q, o.Method, outErr), nil
}
