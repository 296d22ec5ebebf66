package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
)

// quantizeSequential is GPTQ (or RSQ) with each layer's Hessian collected
// from the model in which the layers before it are already quantized, as
// GPTQ's reference implementation does: the Hessian then describes the
// inputs the layer will see at run time, so its error compensation also
// absorbs the errors of earlier layers.
//
// Layers go in node order, in passes: a pass takes consecutive layers
// until one reads a value computed from a layer already in the pass
// (Q/K/V projections reading one normalised input share a pass; the
// output projection starts the next). After each pass the pass's weights
// are replaced in m by their dequantized values; the float weights are
// put back before returning, so the emitters see the model as before.
func quantizeSequential(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, d Dataset, weights map[*Layer]TokenWeights) ([]*Quantized, error) {
	saved := map[string][]float32{}
	dims := map[string][]int64{}
	defer func() {
		for name, v := range saved {
			_ = graph.SetFloat32s(m.Graph.Initializer(name), dims[name], v)
		}
	}()
	original := func(l *Layer) (Matrix, error) {
		if _, ok := saved[l.Weight]; !ok {
			v, err := graph.Float32s(m.Graph.Initializer(l.Weight))
			if err != nil {
				return Matrix{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
			}
			saved[l.Weight] = append([]float32(nil), v...)
			dims[l.Weight] = l.Dims
		}
		v := append([]float32(nil), saved[l.Weight]...)
		if l.transposed() {
			return Matrix{Rows: l.In(), Cols: l.Out(), Data: v}.T(), nil
		}
		return Matrix{Rows: l.Out(), Cols: l.In(), Data: v}, nil
	}
	out := make([]*Quantized, len(layers))
	passes := 0
	for done := 0; done < len(layers); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := done + 1
		for end < len(layers) && !dependsOn(m, layers[end].Input(), layers[done:end]) {
			end++
		}
		pass := layers[done:end]
		hess, err := CollectHessians(ctx, m, pass, d, weights, o.BatchSize)
		if err != nil {
			return nil, err
		}
		passes++
		for i, l := range pass {
			progress.Report(ctx, o.Method+" layers", done+i, len(layers))
			w, err := original(l)
			if err != nil {
				return nil, err
			}
			q, lr, err := o.quantizeLayer(l, w, hess[l])
			if err != nil {
				return nil, err
			}
			out[done+i] = q
			rep.Layers = append(rep.Layers, lr)
		}
		for i, l := range pass {
			if err := l.SetMatrix(m, out[done+i].Dequantize()); err != nil {
				return nil, err
			}
		}
		done = end
	}
	rep.note(o, "gptq: sequential, Hessians collected in %d calibration passes over the partly quantized model", passes)
	return out, nil
}

// dependsOn reports whether value name is computed from the output of
// any of the layers' nodes.
func dependsOn(m *graph.Model, name string, layers []*Layer) bool {
	targets := map[*graph.Node]bool{}
	for _, l := range layers {
		targets[l.Node] = true
	}
	seen := map[string]bool{}
	stack := []string{name}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v] {
			continue
		}
		seen[v] = true
		p := m.Graph.Producer(v)
		if p == nil {
			continue
		}
		if targets[p] {
			return true
		}
		stack = append(stack, p.Proto.Input...)
	}
	return false
}
