package recovery

import (
	"context"
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// layerJob is what one layer's refit reads: values of the dense and of
// the pruned model on the same samples, turned into the pruned layer's
// input rows and the rows its outputs should match.
type layerJob struct {
	denseNames, prunedNames []string
	// input returns the pruned layer's input rows (a trailing 1 when a
	// bias is fitted).
	input func(pv map[string]tensor.Dense) ([]float64, error)
	// target returns the target rows; pv is nil unless needsPruned.
	target      func(dv, pv map[string]tensor.Dense) ([]float64, error)
	needsPruned bool
	node        *graph.Node // the pruned layer's node
	fit         *layerFit
}

// rowSource runs the models over the calibration data for the layers of
// a reconstruction, in graph order, and fills each layer's fit.
type rowSource interface {
	fill(ctx context.Context, j *layerJob) error
	close()
	// how says how the models ran, for the report's notes.
	how() string
}

// wholeRuns runs the whole dense model once per layer (capturing every
// changed layer's input at once) and the whole pruned model once per
// layer, both batch by batch over the data.
type wholeRuns struct {
	m, dense *graph.Model
	capture  []string // dense values read by any layer
	src      *calib.Source
	batch    int
	dr       *calib.Runner
	why      string // why not by segments
}

func (w *wholeRuns) fill(ctx context.Context, j *layerJob) error {
	if w.dr == nil {
		dr, err := calib.NewRunner(w.dense, w.capture)
		if err != nil {
			return err
		}
		w.dr = dr
	}
	pr, err := calib.NewRunner(w.m, j.prunedNames)
	if err != nil {
		return err
	}
	defer pr.Close()
	return w.src.Each(ctx, w.batch, func(in map[string]tensor.Dense) error {
		dv, err := w.dr.Run(ctx, in)
		if err != nil {
			return err
		}
		pv, err := pr.Run(ctx, in)
		if err != nil {
			return err
		}
		xt, err := j.input(pv)
		if err != nil {
			return err
		}
		t, err := j.target(dv, pv)
		if err != nil {
			return err
		}
		return j.fit.add(xt, t)
	})
}

func (w *wholeRuns) close() {
	if w.dr != nil {
		w.dr.Close()
	}
}

func (w *wholeRuns) how() string { return w.why }

// TargetBudget bounds the bytes of one layer's dense targets that
// segmentRuns holds between its dense and its pruned capture; past it
// the reconstruction runs whole models.
var TargetBudget int64 = 1 << 30

// FrontierBudget bounds the bytes of values both models' segments keep
// between captures. calib.Segments checks its own budget at the first
// capture only; frontiers that grow later (a DenseNet's concats over
// many samples) send the rest of the reconstruction to whole runs.
var FrontierBudget int64 = 2 << 30

// segmentRuns captures both models segment by segment (calib.Segments):
// each layer's capture runs only the nodes between the previous layer's
// inputs and its own, from the values kept at that frontier, so that a
// reconstruction costs one forward pass of each model over the data
// instead of one per layer, and onnxruntime holds one segment's weights
// at a time. The pruned model's captures stay exact as layers are
// refitted: a layer's weights change after its input was captured and
// before any node reading its output runs.
//
// The two captures of a layer do not run side by side, so the dense
// targets are computed first and held (float32, TargetBudget) until the
// pruned inputs of the same samples arrive.
//
// A layer the segments cannot take (calib.ErrSegments) and every layer
// after it go to whole runs, which do not depend on what the segments
// ran.
type segmentRuns struct {
	dense, pruned *calib.Segments
	whole         *wholeRuns // the fall-back, in use once why is set
}

func newSegmentRuns(m, dense *graph.Model, src *calib.Source, batch int, whole *wholeRuns) (*segmentRuns, error) {
	ds, err := calib.NewSegments(dense, src, batch)
	if err != nil {
		return nil, err
	}
	ps, err := calib.NewSegments(m, src, batch)
	if err != nil {
		return nil, err
	}
	return &segmentRuns{dense: ds, pruned: ps, whole: whole}, nil
}

func (s *segmentRuns) fill(ctx context.Context, j *layerJob) error {
	if s.whole.why == "" {
		err := s.fillSegments(ctx, j)
		if !errors.Is(err, calib.ErrSegments) {
			return err
		}
		s.dense, s.pruned = nil, nil
		s.whole.why = fmt.Sprintf("whole-model runs from %s on (%v)", j.node.Name(), err)
		j.fit = newLayerFit(j.fit.cols, j.fit.out)
	}
	return s.whole.fill(ctx, j)
}

func (s *segmentRuns) close() { s.whole.close() }

func (s *segmentRuns) how() string {
	if s.whole.why != "" {
		return s.whole.why
	}
	return "one forward pass of each model, segment by segment"
}

// fillSegments fills j's fit from one capture of each model's segments.
func (s *segmentRuns) fillSegments(ctx context.Context, j *layerJob) error {
	if j.needsPruned {
		return fmt.Errorf("recovery: %w: the target reads the pruned model", calib.ErrSegments)
	}
	if kept := s.dense.KeptBytes() + s.pruned.KeptBytes(); kept > FrontierBudget {
		// Frontiers that grew past the first capture's check (a
		// DenseNet's concats): whole runs hold one batch at a time.
		return fmt.Errorf("recovery: %w: %d MB of values kept between captures", calib.ErrSegments, kept>>20)
	}
	if s.pruned.Ran(j.node) {
		// Its refit would not reach the nodes that read its output.
		return fmt.Errorf("recovery: %w: %s ran before its input was captured", calib.ErrSegments, j.node.Name())
	}
	var held []float32
	per := 0 // target values per sample
	err := s.dense.Capture(ctx, j.denseNames, func(dv map[string]tensor.Dense, first, n int) error {
		t, err := j.target(dv, nil)
		if err != nil {
			return err
		}
		if n == 0 || len(t)%n != 0 || per != 0 && len(t)/n != per {
			return fmt.Errorf("recovery: %w: samples give different numbers of target rows", calib.ErrSegments)
		}
		per = len(t) / n
		if first*per != len(held) {
			return fmt.Errorf("recovery: %w: batches out of order", calib.ErrSegments)
		}
		if int64(len(held)+len(t))*4 > TargetBudget {
			return fmt.Errorf("recovery: %w: dense targets past %d MB", calib.ErrSegments, TargetBudget>>20)
		}
		for _, v := range t {
			held = append(held, float32(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	t := make([]float64, 0)
	return s.pruned.Capture(ctx, j.prunedNames, func(pv map[string]tensor.Dense, first, n int) error {
		xt, err := j.input(pv)
		if err != nil {
			return err
		}
		lo, hi := first*per, (first+n)*per
		if hi > len(held) {
			return fmt.Errorf("recovery: %w: the pruned model ran samples the dense one did not", calib.ErrSegments)
		}
		t = t[:0]
		for _, v := range held[lo:hi] {
			t = append(t, float64(v))
		}
		return j.fit.add(xt, t)
	})
}

// openRows picks how a reconstruction runs the models: by segments
// unless block targets (which read both models on one batch) are asked
// for or the models cannot be segmented.
func openRows(m, dense *graph.Model, capture []string, src *calib.Source, batch int, blocks bool) (rowSource, error) {
	whole := &wholeRuns{m: m, dense: dense, capture: capture, src: src, batch: batch}
	if blocks || !segmentRecon {
		whole.why = "the whole models once per layer"
		return whole, nil
	}
	s, err := newSegmentRuns(m, dense, src, batch, whole)
	if errors.Is(err, calib.ErrSegments) {
		whole.why = fmt.Sprintf("the whole models once per layer (%v)", err)
		return whole, nil
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// segmentRecon turns segment runs on (tests compare with whole runs).
var segmentRecon = true

// newLayerJob describes the refit of dense layer dl, pruned to pl (node
// n) with its kept output rows: targets are the dense layer's kept
// outputs, or with bt the dense residual block's output less the
// pruned skip path (block.go).
func newLayerJob(dense *graph.Model, dl, pl *calib.Layer, n *graph.Node, rows []int, fitBias bool, bt *blockTarget) (*layerJob, error) {
	j := &layerJob{denseNames: []string{dl.Input()}, prunedNames: []string{pl.Input()}, node: n}
	// Row buffers reused batch after batch: a fit is done with a
	// batch's rows before the next (calib.Layer.RowsInto).
	var pbuf, obuf, dbuf []float64
	j.input = func(pv map[string]tensor.Dense) ([]float64, error) {
		xt, err := pl.RowsInto(pbuf, pv[pl.Input()])
		if err != nil {
			return nil, err
		}
		pbuf = xt
		if !fitBias {
			return xt, nil
		}
		obuf = withOnesInto(obuf, xt, pl.In())
		return obuf, nil
	}
	if bt != nil {
		j.denseNames = []string{bt.add}
		j.prunedNames = append(j.prunedNames, bt.skip)
		j.needsPruned = true
		conv := n.Op() == "Conv"
		j.target = func(dv, pv map[string]tensor.Dense) ([]float64, error) {
			d, err := outputRows(dv[bt.add], conv, dl.Out())
			if err != nil {
				return nil, err
			}
			sk, err := outputRows(pv[bt.skip], conv, len(rows))
			if err != nil {
				return nil, err
			}
			return bt.targetRows(d, dl.Out(), rows, sk)
		}
		return j, nil
	}
	// The dense layer's kept rows, to compute its outputs from its dense
	// inputs.
	wd, err := dl.Matrix(dense.Graph)
	if err != nil {
		return nil, err
	}
	wk := mat.NewDense(len(rows), dl.In(), nil)
	for a, r := range rows {
		wk.SetRow(a, wd[r*dl.In():(r+1)*dl.In()])
	}
	var bd []float64
	if b := layerBias(dense.Graph, dl.Node, dl.Out()); b != "" {
		if bd, err = constVec(dense.Graph, b); err != nil {
			return nil, err
		}
	}
	j.target = func(dv, _ map[string]tensor.Dense) ([]float64, error) {
		x, err := dl.RowsInto(dbuf, dv[dl.Input()])
		if err != nil {
			return nil, err
		}
		dbuf = x
		return denseOutputs(x, wk, rows, bd), nil
	}
	return j, nil
}
