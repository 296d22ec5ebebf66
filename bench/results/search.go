package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

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
}

// runSearch prunes a fresh copy of model the way `pare prune --calib`
// does with no other choice (cfg's criterion, allocation and steps are
// the search's) and measures the kept model and every candidate.
func (e *evaluator) runSearch(ctx context.Context, model string, cfg pruner.Config) (measured, searchMeasured) {
	m, err := graph.Load(filepath.Join(*root, model))
	if err != nil {
		return measured{err: err}, searchMeasured{}
	}
	cfg.Calib = filepath.Join(*root, cfg.Calib)
	cfg.Settings.Criterion, cfg.Reconstruct = "obs", true
	out, s, err := pruner.RunSearch(ctx, m, prune.Options{}, cfg, pruner.SearchConfig{KeepModels: true})
	if err != nil {
		return measured{err: err}, searchMeasured{}
	}
	acc, err := e.accuracy(ctx, m)
	sm := searchMeasured{search: s}
	for i, c := range s.Candidates {
		a := -1.0
		if c.Model != nil {
			if v, err := e.accuracy(ctx, c.Model); err == nil {
				a = v
			}
		}
		sm.acc = append(sm.acc, a)
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
	b.WriteString("| ratio | candidate | removed | held-out KL | held-out rel. MSE | held-out top-1 agreement | test accuracy |\n|---|---|---|---|---|---|---|\n")
	for _, f := range found {
		if f.search == nil {
			fmt.Fprintf(&b, "| %.0f%% | search failed | | | | | |\n", 100*f.ratio)
			continue
		}
		for i, c := range f.search.Candidates {
			name := c.Name
			if i == f.search.Picked {
				name = "**" + name + "** (picked)"
			}
			if c.Err != "" {
				fmt.Fprintf(&b, "| %.0f%% | %s | failed: %s | | | | |\n", 100*f.ratio, name, c.Err)
				continue
			}
			fmt.Fprintf(&b, "| %.0f%% | %s | %.1f%% | %.4f | %.4f | %.1f%% | %.1f%% |\n", 100*f.ratio, name, 100*c.Removed, c.Score.KL, c.Score.RelMSE, 100*c.Score.Agreement, 100*f.acc[i])
		}
	}
	b.WriteString("\n")
	return b.String()
}

// proxy is one way to rank candidates on the held-out slice (lower is
// better).
type proxy struct {
	name  string
	value func(pruner.HeldOutScore) float64
}

var proxies = []proxy{
	{"KL divergence of the softmax", func(s pruner.HeldOutScore) float64 { return s.KL }},
	{"relative output MSE (the search's)", func(s pruner.HeldOutScore) float64 { return s.RelMSE }},
	{"top-1 disagreement", func(s pruner.HeldOutScore) float64 { return 1 - s.Agreement }},
}

// proxySummary says, per held-out proxy, how far the candidate it would
// pick falls below the candidate with the best test accuracy, over every
// measured search.
func proxySummary(found []searchMeasured) string {
	var b strings.Builder
	b.WriteString("Held-out proxies against test accuracy: for each way of ranking the candidates on the held-out samples, the test accuracy its pick loses to the best candidate of the same search (points; mean and worst over the searches above), and how often the pick is within 0.5 point of it.\n\n")
	b.WriteString("| held-out proxy | mean loss | worst loss | within 0.5 |\n|---|---|---|---|\n")
	for _, p := range proxies {
		sum, worst, within, n := 0.0, 0.0, 0, 0
		for _, f := range found {
			if f.search == nil {
				continue
			}
			pick, best := -1, -1
			for i, c := range f.search.Candidates {
				if c.Err != "" || f.acc[i] < 0 {
					continue
				}
				if pick < 0 || p.value(c.Score) < p.value(f.search.Candidates[pick].Score) {
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
