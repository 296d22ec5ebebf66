package pruner

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// RunSteps prunes m toward cfg's ratio in steps: step k removes what
// brings m to k/steps of the requested reduction of the original
// parameters (MACs with --target macs; channels are scheduled like
// parameters). Every step analyses the already-pruned model again, so
// OBS Hessians, Wanda norms and sensitivities are collected on it, and
// runs the step's compensation and recovery (--reconstruct fits the
// step's pruned layers, and every layer changed by an earlier step, to
// the outputs of m as it was before the first step: recovery.Origin).
// The outcome is the last step's, with every step's notes.
func RunSteps(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, steps int) (*Outcome, error) {
	s := cfg.Settings
	switch {
	case steps < 1:
		return nil, fmt.Errorf("prune: %w: --steps %d (want 1 or more)", prune.ErrInvalidOption, steps)
	case steps > 1 && len(s.KindRatios) > 0:
		return nil, fmt.Errorf("prune: %w: --steps shares --ratio; --heads, --kv-groups, --mlp and --embed are one-step", prune.ErrInvalidOption)
	case steps > 1 && s.Target == "latency":
		return nil, fmt.Errorf("prune: %w: --steps counts params or MACs on the pruned model between steps; --target latency is one-step", prune.ErrInvalidOption)
	case steps > 1 && cfg.DryRun:
		return nil, fmt.Errorf("prune: %w: --dry-run shows one step's allocation; --steps needs the pruned model between steps", prune.ErrInvalidOption)
	}
	cost := func() (float64, error) {
		c, err := graph.Count(m)
		if err != nil {
			return 0, err
		}
		if s.Target == "macs" {
			return float64(c.MACs), nil
		}
		return float64(c.Params), nil
	}
	start, err := cost()
	if err != nil {
		return nil, err
	}
	if steps > 1 && cfg.Reconstruct && !cfg.ReconstructBlocks && !cfg.fitPreviousStep {
		if cfg.origin, err = recovery.NewOrigin(m); err != nil {
			return nil, err
		}
	}
	var all []string
	var out *Outcome
	for k := 1; k <= steps; k++ {
		now, err := cost()
		if err != nil {
			return nil, err
		}
		want := start * (1 - float64(k)*s.Ratio/float64(steps))
		c := cfg
		c.Settings.Ratio = 1 - want/now
		if c.Settings.Ratio <= 0 {
			continue
		}
		an, err := prune.Analyze(m, opts)
		if err != nil {
			return nil, err
		}
		if out, err = Run(ctx, m, an, nil, c); err != nil {
			return nil, fmt.Errorf("step %d of %d: %w", k, steps, err)
		}
		if steps > 1 {
			all = append(all, fmt.Sprintf("step %d of %d: removed %.1f%% of the remaining %s", k, steps, 100*c.Settings.Ratio, s.Target))
		}
		all = append(all, out.Notes...)
	}
	if out == nil {
		return nil, fmt.Errorf("prune: %w: nothing to remove", prune.ErrTarget)
	}
	out.Notes = all
	return out, nil
}
