package quant

import (
	"context"
	"errors"
	"fmt"

	"github.com/pare-dev/pare/calib"
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
// are replaced in m by their dequantized values. Each result goes to
// emit as soon as it is made, in layer order, and is not kept.
//
// The calibration runs go through calib.Segments: each pass runs only
// the nodes between the previous pass's inputs and its own, from the
// values kept at that frontier, so that the whole run costs one forward
// pass over the data and onnxruntime holds one segment's weights at a
// time. A dequantized weight is put back to its original (still mapped
// from its file, never copied) as soon as every node reading it has run;
// the rest are put back before returning, so the emitters see the model
// as before. Models the segments cannot take (or whose kept values
// outgrow calib.SegmentBudget in the first pass) run whole each pass.
//
// Without o.Sequential the same passes run over the float model (no
// weight is replaced): the Hessians are those of one whole-model
// capture, collected pass by pass so that one pass's Hessians are held
// at a time; errWholeModel asks the caller to capture the whole model
// when the segments cannot run it.
func quantizeSequential(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, d Dataset, weights map[*Layer]TokenWeights, emit func(i int, q *Quantized) error) error {
	replace := o.Sequential
	restore := map[string]func(){}
	defer func() {
		for _, put := range restore {
			put()
		}
	}()
	seg, err := calib.NewSegments(m, d, o.BatchSize)
	if err != nil || !segmentCapture {
		if !replace {
			return errWholeModel
		}
		seg = nil
	}
	// putBack restores the dequantized weights no node will read again.
	putBack := func() {
		for name, put := range restore {
			done := true
			for _, c := range m.Graph.Consumers(name) {
				if seg == nil || !seg.Ran(c) {
					done = false
				}
			}
			if done {
				put()
				delete(restore, name)
			}
		}
	}
	// original reads l's float weight, also when a layer quantized
	// before shares it.
	original := func(l *Layer) (Matrix, error) {
		put, ok := restore[l.Weight]
		if !ok {
			return l.Matrix(m)
		}
		now := graph.Keep(m.Graph.Initializer(l.Weight))
		put()
		defer now()
		return l.Matrix(m)
	}
	passes := 0
	for done := 0; done < len(layers); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := done + 1
		for end < len(layers) && !dependsOn(m, layers[end].Input(), layers[done:end]) {
			end++
		}
		pass := layers[done:end]
		collect := func() (map[*Layer]*Hessian, error) {
			return collectHessians(pass, weights, func(names []string, visit visitFunc) error {
				if seg != nil {
					return seg.Capture(ctx, names, visit)
				}
				return capture(ctx, m, d, names, o.BatchSize, visit)
			})
		}
		hess, err := collect()
		if err != nil && seg != nil && passes == 0 && errors.Is(err, calib.ErrSegments) {
			if !replace {
				return errWholeModel
			}
			// No weight has changed yet: start again with whole runs.
			rep.note(o, "gptq: %v; each pass runs the whole model", err)
			seg = nil
			hess, err = collect()
		}
		if err != nil {
			return err
		}
		passes++
		putBack()
		deq := make([]Matrix, len(pass))
		for i, l := range pass {
			progress.Report(ctx, o.Method+" layers", done+i, len(layers))
			if err := ctx.Err(); err != nil {
				return err
			}
			w, err := original(l)
			if err != nil {
				return err
			}
			q, lr, err := o.quantizeLayer(l, w, hess[l])
			if err != nil {
				return err
			}
			delete(hess, l)
			rep.Layers = append(rep.Layers, lr)
			if replace && end < len(layers) {
				// The last pass's weights are not run again.
				deq[i] = q.Dequantize()
			}
			if err := emit(done+i, q); err != nil {
				return err
			}
		}
		for i, l := range pass {
			if !replace || end == len(layers) {
				break
			}
			if _, ok := restore[l.Weight]; !ok {
				restore[l.Weight] = graph.Keep(m.Graph.Initializer(l.Weight))
			}
			if err := l.SetMatrix(m, deq[i]); err != nil {
				return err
			}
			deq[i] = Matrix{}
		}
		done = end
	}
	how := "the whole model each pass"
	if seg != nil {
		how = fmt.Sprintf("%d segments of %d nodes from kept values, one forward pass in all", seg.Runs, seg.Nodes)
	}
	if replace {
		rep.note(o, "gptq: sequential, Hessians collected in %d calibration passes over the partly quantized model (%s)", passes, how)
	} else {
		rep.note(o, "gptq: Hessians collected in %d calibration passes over the float model (%s)", passes, how)
	}
	return nil
}

// errWholeModel: the float model's Hessians are to be collected by whole
// runs (the segments cannot take the model).
var errWholeModel = errors.New("quant: whole-model capture")

// segmentCapture turns calib.Segments on (tests compare with whole runs).
var segmentCapture = true

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
