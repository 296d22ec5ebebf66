package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/pruner"
)

// searchMeasured is one default search: its candidates with their
// held-out scores and the test accuracy of each candidate's model.
type searchMeasured struct {
	model  string
	ratio  float64
	search *pruner.Search
	acc    []float64 // per candidate; -1 when it failed
	// test is each candidate's agreement with the dense model on the
	// test images, labels unread: what the held-out slice estimates,
	// measured on 10000 images instead of 64.
	test []pruner.HeldOutScore
	// other is each candidate's held-out score in a second search that
	// held out another slice (-merge -folds); nil when not measured.
	other []pruner.HeldOutScore
}

// runSearch prunes a fresh copy of model the way `pare prune --calib`
// does with no other choice (cfg's criterion, allocation and steps are
// the search's) and measures the kept model and every candidate.
func (e *evaluator) runSearch(ctx context.Context, model string, cfg pruner.Config) (measured, searchMeasured) {
	m, err := graph.Load(filepath.Join(*root, model))
	if err != nil {
		return measured{err: err}, searchMeasured{}
	}
	cfg.Calib = inRoot(cfg.Calib)
	cfg.Settings.Criterion, cfg.Reconstruct = "obs", true
	cfg.FitBlocks = -1 // the default's block fit, as the command line leaves it
	cfg.FitOutput = -1 // and its output term (on from 1024 samples)
	// The command line's rounding, not the rows' --round-to 8: the row
	// is what pare prune --ratio R --calib X writes.
	cfg.Settings.RoundTo, cfg.Settings.RoundNarrow, cfg.Settings.RoundSoft = prune.DefaultRoundTo, prune.DefaultRoundNarrow, true
	if err := alignBlocks(ctx, m, prune.Options{}, cfg); err != nil {
		return measured{err: err}, searchMeasured{}
	}
	out, s, err := pruner.RunSearch(ctx, m, prune.Options{}, cfg, pruner.SearchConfig{KeepModels: true})
	if err != nil {
		return measured{err: err}, searchMeasured{}
	}
	acc, err := e.accuracy(ctx, m)
	sm := searchMeasured{search: s}
	d, derr := graph.Load(filepath.Join(*root, model))
	var ref []float32
	if derr == nil {
		ref, derr = e.logits(ctx, d)
	}
	for i, c := range s.Candidates {
		a, t := -1.0, pruner.HeldOutScore{RelMSE: -1}
		if c.Model != nil {
			if y, err := e.logits(ctx, c.Model); err == nil {
				a = check.Top1(y, e.y)
				if derr == nil && len(y) == len(ref) {
					t = pruner.CompareOutputs(ref, y, len(ref)/len(e.y))
				}
			}
		}
		sm.acc = append(sm.acc, a)
		sm.test = append(sm.test, t)
		s.Candidates[i].Model = nil
	}
	return measured{acc: acc, notes: out.Notes, err: err}, sm
}

// candidateTable lists a model's search candidates per ratio.
func candidateTable(found []searchMeasured, tests int) string {
	if len(found) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Search candidates (held out: the last 64 calibration samples; test: the %d test images):\n\n", tests)
	b.WriteString("| ratio | candidate | removed | held-out KL | held-out rel. MSE | held-out top-1 agreement | test rel. MSE (no labels) | test top-1 agreement (no labels) | test accuracy |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range found {
		if f.search == nil {
			fmt.Fprintf(&b, "| %.0f%% | search failed | | | | | | | |\n", 100*f.ratio)
			continue
		}
		for i, c := range f.search.Candidates {
			name := c.Name
			if i == f.search.Picked {
				name = "**" + name + "** (picked)"
			}
			if c.Err != "" {
				fmt.Fprintf(&b, "| %.0f%% | %s | failed: %s | | | | | | |\n", 100*f.ratio, name, c.Err)
				continue
			}
			fmt.Fprintf(&b, "| %.0f%% | %s | %.1f%% | %.4f | %.4f | %.1f%% | %.4f | %.1f%% | %.1f%% |\n", 100*f.ratio, name, 100*c.Removed, c.Score.KL, c.Score.RelMSE, 100*c.Score.Agreement, f.test[i].RelMSE, 100*f.test[i].Agreement, 100*f.acc[i])
		}
	}
	b.WriteString("\n")
	return b.String()
}

// softProxyTable lists the softmax measures per candidate: the
// cross-entropy of the pruned softmax against the dense model's arg
// max, held out and on the test images, and the KL on the test images
// (a table of its own, so that merge reads the candidate table as
// before).
func softProxyTable(found []searchMeasured) string {
	var b strings.Builder
	b.WriteString("| ratio | path | held-out pseudo-label CE | test pseudo-label CE | test KL | test accuracy |\n|---|---|---|---|---|---|\n")
	for _, f := range found {
		if f.search == nil {
			continue
		}
		for i, c := range f.search.Candidates {
			if c.Err != "" {
				continue
			}
			fmt.Fprintf(&b, "| %.0f%% | %s | %.4f | %.4f | %.4f | %.2f%% |\n", 100*f.ratio, c.Name, c.Score.PseudoCE, f.test[i].PseudoCE, f.test[i].KL, 100*f.acc[i])
		}
	}
	b.WriteString("\n")
	return b.String()
}

// proxy is one way to rank a search's candidates without labels (lower
// is better): on the held-out slice, or on the test images' outputs
// against the dense model's (how the same measure ranks with 10000
// samples instead of 64).
type proxy struct {
	name  string
	value func(f searchMeasured, i int) float64
}

var proxies = []proxy{
	{"held out: KL divergence of the softmax", func(f searchMeasured, i int) float64 { return f.search.Candidates[i].Score.KL }},
	{"held out: relative output MSE (the search's)", func(f searchMeasured, i int) float64 { return f.search.Candidates[i].Score.RelMSE }},
	{"held out: top-1 disagreement", func(f searchMeasured, i int) float64 { return 1 - f.search.Candidates[i].Score.Agreement }},
	// Tables read back by -merge have no pseudo-label CE: NaN leaves
	// them out of this row.
	{"held out: pseudo-label cross-entropy", func(f searchMeasured, i int) float64 { return measuredOr(f.search.Candidates[i].Score.PseudoCE) }},
	{"held out, two folds (cross-fitted): mean relative output MSE", func(f searchMeasured, i int) float64 {
		if f.other == nil {
			return math.NaN()
		}
		return (f.search.Candidates[i].Score.RelMSE + f.other[i].RelMSE) / 2
	}},
	{"held out, two folds (cross-fitted): mean pseudo-label cross-entropy", func(f searchMeasured, i int) float64 {
		if f.other == nil || f.other[i].PseudoCE == 0 {
			return math.NaN()
		}
		return (f.search.Candidates[i].Score.PseudoCE + f.other[i].PseudoCE) / 2
	}},
	{"held out, two folds (cross-fitted): mean KL", func(f searchMeasured, i int) float64 {
		if f.other == nil {
			return math.NaN()
		}
		return (f.search.Candidates[i].Score.KL + f.other[i].KL) / 2
	}},
	{"held out, the other fold alone: relative output MSE", func(f searchMeasured, i int) float64 {
		if f.other == nil {
			return math.NaN()
		}
		return f.other[i].RelMSE
	}},
	{"test images, no labels: relative output MSE", func(f searchMeasured, i int) float64 { return f.test[i].RelMSE }},
	{"test images, no labels: KL divergence of the softmax", func(f searchMeasured, i int) float64 { return measuredOr(f.test[i].KL) }},
	{"test images, no labels: pseudo-label cross-entropy", func(f searchMeasured, i int) float64 { return measuredOr(f.test[i].PseudoCE) }},
	{"test images, no labels: top-1 disagreement", func(f searchMeasured, i int) float64 { return 1 - f.test[i].Agreement }},
}

// measuredOr is v, or NaN when v is 0 (a score not measured).
func measuredOr(v float64) float64 {
	if v == 0 {
		return math.NaN()
	}
	return v
}

// proxySummary says, per held-out proxy, how far the candidate it would
// pick falls below the candidate with the best test accuracy, over every
// measured search. Each proxy ranks as the search does: a candidate more
// than pruner.SearchShortfall short of the ratio after every one that
// reaches it; a whole-groups twin, compared only after a fit, is left
// out.
func proxySummary(found []searchMeasured) string {
	var b strings.Builder
	b.WriteString("Label-free proxies against test accuracy: for each way of ranking the candidates without labels (on the held-out samples, or on the test images' outputs against the dense model's), the test accuracy its pick loses to the best candidate of the same search (points; mean and worst over the searches above), and how often the pick is within 0.5 point of it. Each ranks as the search does: a candidate more than a point short of the ratio after those that reach it, whole-groups twins left out.\n\n")
	b.WriteString("| proxy | mean loss | worst loss | within 0.5 |\n|---|---|---|---|\n")
	for _, p := range proxies {
		sum, worst, within, n := 0.0, 0.0, 0, 0
		for _, f := range found {
			if f.search == nil {
				continue
			}
			pick, best := -1, -1
			short := func(i int) bool { return f.search.Candidates[i].Removed < f.ratio-pruner.SearchShortfall }
			for i, c := range f.search.Candidates {
				if c.Err != "" || f.acc[i] < 0 || math.IsNaN(p.value(f, i)) || c.ConvGroups || strings.Contains(c.Name, "whole groups") {
					continue
				}
				if pick < 0 || (short(pick) && !short(i)) || (short(i) == short(pick) && p.value(f, i) < p.value(f, pick)) {
					pick = i
				}
				if best < 0 || f.acc[i] > f.acc[best] {
					best = i
				}
			}
			if pick < 0 {
				continue
			}
			loss := 100 * (f.acc[best] - f.acc[pick])
			sum, worst, n = sum+loss, max(worst, loss), n+1
			if loss <= 0.5+1e-9 {
				within++
			}
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.1f | %d of %d |\n", p.name, sum/float64(n), worst, within, n)
	}
	b.WriteString("\n")
	return b.String()
}
