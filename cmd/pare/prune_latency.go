package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/latency"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/pruner"
)

// Measuring the plan of --target latency. The per-layer table times
// every layer alone: onnxruntime then pays, per layer, layout reorders
// and kernel choices that the whole model amortises or makes
// differently, and what no layer covers is held fixed. The estimate
// ranks widths well but its ratio drifts from the whole model's (on
// untrained torchvision models at a 50% target: MobileNetV2,
// EfficientNet-B0 and DenseNet-121 measured 0.53–0.60 of dense, the ViT
// 0.41–0.47). So the selected plan is applied to a copy, the copy is
// timed against the dense model run by run, and the estimate's budget is
// corrected by what was measured, a few times at most and by a quarter
// of the asked ratio at most; the plan that measured closest to the
// asked ratio is kept.
const (
	latencyRounds    = 3    // plans measured at most
	latencyTolerance = 0.02 // of the dense latency
	latencyWarmup    = 3
	latencyRuns      = 15
	latencyBudget    = 2 * time.Second // timed runs of both models, per plan
)

// measuredLatencyPlan selects the plan for a latency target of
// cfg.Settings.Ratio (latency removed) on m, measuring each candidate
// whole. It returns the plan and notes on each measurement; m is left
// untouched. ok is false (and the plan nil) where the models cannot be
// measured whole (past protobuf's 2 GiB); the caller then keeps the
// table's estimate.
func measuredLatencyPlan(ctx context.Context, m *graph.Model, an *prune.Analysis, cfg pruner.Config) (plan *prune.Plan, notes []string, err error) {
	dense, err := m.Marshal()
	if err != nil {
		return nil, []string{fmt.Sprintf("latency: the model cannot be measured whole (%v): the table's estimate is kept", err)}, nil
	}
	want := 1 - cfg.Settings.Ratio // latency kept, as a fraction of dense
	est := cfg.Settings.Ratio      // the ratio asked of the estimate
	bestGap := math.Inf(1)
	var pts []point
	for round := range latencyRounds {
		c := cfg
		c.DryRun = true
		c.Settings.Ratio = est
		out, err := pruner.Run(ctx, m, an, nil, c)
		if err != nil {
			return nil, nil, err
		}
		p := out.Plan
		b, err := applyToCopy(m, an, p)
		if err != nil {
			return nil, nil, err
		}
		cmp, err := latency.Compare(ctx, dense, b, latencyWarmup, latencyRuns, latencyBudget)
		if err != nil {
			return nil, nil, err
		}
		estKept := p.After.LatencyUs / max(p.Before.LatencyUs, 1e-9)
		notes = append(notes, fmt.Sprintf("latency measured, plan %d: estimate %.2f×, measured %.2f× (%.0f µs → %.0f µs, CPU time, medians of %d interleaved runs)",
			round+1, estKept, cmp.Ratio, cmp.DenseUs, cmp.PrunedUs, cmp.Runs))
		if gap := math.Abs(cmp.Ratio - want); gap < bestGap {
			plan, bestGap = p, gap
		}
		if bestGap <= latencyTolerance || round == latencyRounds-1 {
			break
		}
		pts = append(pts, point{estKept, cmp.Ratio})
		// The correction stays within a quarter of the asked ratio: a
		// measurement thrown off by the machine's load must not turn
		// into a model pruned far past the goal.
		kept := min(max(nextEstimate(pts, want), 0.75*want), 1.25*want, 0.99)
		next := min(max(1-kept, 0.01), 0.95)
		if math.Abs(next-est) < 1e-3 {
			break
		}
		est = next
	}
	return plan, notes, nil
}

// applyToCopy prunes a copy of m by plan and returns the copy encoded.
func applyToCopy(m *graph.Model, an *prune.Analysis, p *prune.Plan) ([]byte, error) {
	c, err := graph.FromProto(proto.Clone(m.Proto).(*onnx.ModelProto))
	if err != nil {
		return nil, err
	}
	ca, err := prune.Analyze(c, an.Options())
	if err != nil {
		return nil, err
	}
	if err := ca.ApplyPlan(p); err != nil {
		return nil, err
	}
	return c.Marshal()
}

// point is one measured plan: the estimate's kept fraction and the
// measured one.
type point struct{ est, measured float64 }

// nextEstimate returns the kept fraction to ask of the estimate so that
// the measured one lands at want: the measured plans' points, linear
// between the two that bracket want (or the two latest), proportional
// from a single point.
func nextEstimate(pts []point, want float64) float64 {
	last := pts[len(pts)-1]
	a, b := -1, -1
	for i, p := range pts {
		if p.measured <= want && (a < 0 || p.measured > pts[a].measured) {
			a = i
		}
		if p.measured > want && (b < 0 || p.measured < pts[b].measured) {
			b = i
		}
	}
	if a < 0 || b < 0 {
		if len(pts) < 2 {
			// The measured model kept last.measured where the
			// estimate said last.est: ask proportionally less (or
			// more).
			return last.est * want / max(last.measured, 1e-9)
		}
		a, b = len(pts)-2, len(pts)-1
	}
	p, q := pts[a], pts[b]
	if math.Abs(q.measured-p.measured) < 1e-6 {
		return last.est * want / max(last.measured, 1e-9)
	}
	return p.est + (want-p.measured)*(q.est-p.est)/(q.measured-p.measured)
}
