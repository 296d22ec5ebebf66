package quant

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

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
	out := make([]*Quantized, len(layers))
	err := quantizeEach(ctx, m, layers, o, rep, data, func(i int, q *Quantized) error {
		out[i] = q
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quantizeEach quantizes each layer's weight with the chosen method and
// hands each result to emit, in layer order, as soon as it and the
// layers before it are done; a result emit does not keep is dropped, so
// the codes of one layer at a time (a few with RTN's parallel workers)
// are held, not the whole model's.
func quantizeEach(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, data func() (Dataset, error), emit func(i int, q *Quantized) error) error {
	if err := quantizeEachLayer(ctx, m, layers, o, rep, data, emit); err != nil {
		return err
	}
	noteRankDeficient(rep, o)
	return nil
}

func quantizeEachLayer(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, data func() (Dataset, error), emit func(i int, q *Quantized) error) error {
	var hess map[*Layer]*Hessian
	if o.Method != MethodRTN {
		d, err := data()
		if err != nil {
			return err
		}
		var weights map[*Layer]TokenWeights
		if o.Method == MethodRSQ {
			if weights, err = rsqWeights(ctx, m, layers, d, o, rep); err != nil {
				return err
			}
		}
		// Pass by pass through the model's segments: one forward pass,
		// one pass's Hessians held at a time.
		err = quantizeSequential(ctx, m, layers, o, rep, d, weights, emit)
		if !errors.Is(err, errWholeModel) {
			return err
		}
		if hess, err = CollectHessians(ctx, m, layers, d, weights, o.BatchSize); err != nil {
			return err
		}
	}
	if hess == nil {
		return quantizeRTN(ctx, m, layers, o, rep, emit)
	}
	for i, l := range layers {
		progress.Report(ctx, o.Method+" layers", i, len(layers))
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := l.Matrix(m)
		if err != nil {
			return err
		}
		q, lr, err := o.quantizeLayer(l, w, hess[l])
		if err != nil {
			return err
		}
		delete(hess, l)
		rep.Layers = append(rep.Layers, lr)
		if err := emit(i, q); err != nil {
			return err
		}
	}
	return nil
}

// quantizeRTN rounds the layers in parallel (they are independent) and
// emits them in order. A worker slot is freed when its layer is emitted,
// not when it is rounded, so at most a window of layers is held at once.
func quantizeRTN(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, emit func(i int, q *Quantized) error) error {
	reps := make([]LayerReport, len(layers))
	done := make([]*Quantized, len(layers))
	window := 2 * runtime.GOMAXPROCS(0)
	sem := make(chan struct{}, window)
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	// finish records layer i's result and emits the finished prefix.
	finish := func(i int, q *Quantized, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fail(err)
			q = &Quantized{} // a placeholder so that the prefix advances
		}
		done[i] = q
		for next < len(layers) && done[next] != nil {
			if firstErr == nil {
				if err := emit(next, done[next]); err != nil {
					fail(err)
				}
			}
			done[next] = nil
			next++
			progress.Report(ctx, "rtn layers", next, len(layers))
			<-sem
		}
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			fail(err)
			mu.Unlock()
			break
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			w, err := l.Matrix(m)
			if err != nil {
				finish(i, nil, err)
				return
			}
			s, g := o.layerScheme(l)
			q, err := RTN(w, s, g)
			if err != nil {
				finish(i, nil, fmt.Errorf("quant: layer %s: %w", l.Node, err))
				return
			}
			reps[i] = layerReport(l, w, q, o.Method, nil)
			finish(i, q, nil)
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	rep.Layers = append(rep.Layers, reps...)
	return nil
}

// quantizeLayer quantizes one layer's weights: GPTQ when a Hessian was
// collected for it, RTN otherwise, with its report row.
func (o Options) quantizeLayer(l *Layer, w Matrix, h *Hessian) (*Quantized, LayerReport, error) {
	s, g := o.layerScheme(l)
	var q *Quantized
	var outErr *float64
	var err error
	if h != nil {
		var loss float64
		q, loss, err = gptq(w, h, s, g, GPTQOptions{Damp: o.Damp, ActOrder: o.ActOrder})
		if err == nil {
			e := h.outputErrorOf(w, q, loss)
			outErr = &e
		}
	} else {
		q, err = RTN(w, s, g)
	}
	if err != nil {
		return nil, LayerReport{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	lr := layerReport(l, w, q, o.Method, outErr)
	if h != nil {
		lr.HessianRows, lr.HessianCols = h.Rows, h.Cols
	}
	return q, lr, nil
}
