package pruner

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// A path can land short of the target it was asked for: the selection
// takes the count nearest the target, rounding and coarse groups (a
// head dim, 16 channels) move it by a point or more on a small model,
// and steps compound it. The search ranks a short candidate last
// (SearchShortfall), so on a fixture ViT at 70% of the params the
// head-dims paths, with half the held-out error of any other, were
// never picked for removing 68.4-68.9% (docs/RESULTS.md). A short path
// is therefore pruned once more, from the unpruned model, with its
// ratio raised by what it missed, and competes with what that removes.

// maxRaise bounds how far a retry raises the ratio: a path short by
// more than this is limited by something a nudge does not move
// (--max-layer-ratio, frozen groups), and stays short.
const maxRaise = 0.05

// raisedRatio is the ratio to ask of a path that removed removed of a
// target asked at asked, when it was pruned at ratio (the target's or
// an earlier raise): ratio plus what it missed, or 0 when that is more
// than maxRaise above the target or not below 1.
func raisedRatio(ratio, asked, removed float64) float64 {
	r := ratio + (asked - removed)
	if r-asked > maxRaise || r >= 1 {
		return 0
	}
	return r
}

// retryShort prunes a fresh copy of m by c at a raised ratio, after c
// removed removed of the target at the target's ratio. It returns the
// retried candidate with its outcome and copy, or nil when the retry
// cannot be asked, fails, or removes no more than the first run.
func retryShort(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, c Candidate, fit int, before graph.Counts, removed float64) (*Tried, *Outcome, *graph.Model) {
	s := cfg.Settings
	c.Ratio = raisedRatio(s.Ratio, s.Ratio, removed)
	if c.Ratio == 0 {
		return nil, nil, nil
	}
	logf(cfg, "search: %s removed %.1f%% of %s, short of %.1f%%: again at %.1f%%", c.Name, 100*removed, s.Target, 100*s.Ratio, 100*c.Ratio)
	cp, err := cloneModel(m)
	if err != nil {
		return nil, nil, nil
	}
	out, again, err := runRemoving(ctx, cp, opts, cfg, c, fit, before)
	if err != nil || again <= removed {
		return nil, nil, nil
	}
	return &Tried{Candidate: c, Removed: again}, out, cp
}

// runRemoving prunes m in place by c (runCandidate) and returns the
// fraction of before's target it removed.
func runRemoving(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, c Candidate, samples int, before graph.Counts) (*Outcome, float64, error) {
	out, err := runCandidate(ctx, m, opts, cfg, c, samples)
	if err != nil {
		return nil, 0, err
	}
	after, err := graph.Count(m)
	if err != nil {
		return nil, 0, err
	}
	return out, removedFraction(before, after, cfg.Settings.Target), nil
}

// redoOnTarget runs the one-step pick c on m with every sample. Its
// sensitivities and scores move with the samples, and so can what it
// removes: when that lands short of the target, m is restored from
// dense and c runs once more with its ratio raised by what it missed,
// kept if it removes more (otherwise the first run is put back). The
// note says which.
func redoOnTarget(ctx context.Context, m, dense *graph.Model, opts prune.Options, cfg Config, c Candidate, samples int) (*Outcome, string, error) {
	s := cfg.Settings
	before, err := graph.Count(m)
	if err != nil {
		return nil, "", err
	}
	out, removed, err := runRemoving(ctx, m, opts, cfg, c, samples, before)
	if err != nil {
		return nil, "", err
	}
	if !(Tried{Removed: removed}).short(s) {
		return out, "", nil
	}
	ratio := s.Ratio
	if c.Ratio > 0 {
		ratio = c.Ratio
	}
	raised := raisedRatio(ratio, s.Ratio, removed)
	if raised == 0 {
		return out, "", nil
	}
	logf(cfg, "search: %s on all %d samples removed %.1f%% of %s: again at %.1f%%", c.Name, samples, 100*removed, s.Target, 100*raised)
	cp, err := cloneModel(dense)
	if err != nil {
		return nil, "", err
	}
	first := *m
	install(m, cp)
	c.Ratio = raised
	again, got, err := runRemoving(ctx, m, opts, cfg, c, samples, before)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", err
		}
		*m = first
		return out, fmt.Sprintf("search: on all %d samples %s removed %.1f%% of %s, short of the %.1f%% asked; again at %.1f%% it failed (%v), so it stays",
			samples, c.Name, 100*removed, s.Target, 100*s.Ratio, 100*raised, err), nil
	}
	if got <= removed {
		// No closer to the target: the first run stays, with the
		// ratio it was asked.
		*m = first
		return out, fmt.Sprintf("search: on all %d samples %s removed %.1f%% of %s, short of the %.1f%% asked; again at %.1f%% it removed %.1f%%, so the first stays",
			samples, c.Name, 100*removed, s.Target, 100*s.Ratio, 100*raised, 100*got), nil
	}
	return again, fmt.Sprintf("search: on all %d samples %s removed %.1f%% of %s, short of the %.1f%% asked: pruned again at %.1f%%, it removed %.1f%%",
		samples, c.Name, 100*removed, s.Target, 100*s.Ratio, 100*raised, 100*got), nil
}
