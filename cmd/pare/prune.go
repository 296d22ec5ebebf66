package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"
	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/latency"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/pruner"
	"github.com/pare-dev/pare/recovery"
)

// pruneOptions are pare prune's settings.
type pruneOptions struct {
	Model, Output string
	// InputShape is --input-shape as given (parsed by runPrune).
	InputShape      string
	InPlace         bool
	Settings        prune.Settings
	Norm            string
	PlanIn, PlanOut string
	Unstructured    bool
	Sparsity        float64
	NM              string
	JSON            bool
	// Criteria holds the data and recovery settings of pruner.Run
	// (its Settings are taken from Settings).
	Criteria pruner.Config
	HeadDim  bool
	KVGroups bool
	// ConvGroups prunes grouped convolutions by whole groups.
	ConvGroups bool
	// KeepInterface freezes a KV cache's heads instead of shrinking the
	// model's cache inputs and outputs.
	KeepInterface bool
	// NoVerify skips running the result in onnxruntime before writing.
	NoVerify bool
	OrtLib   string
	// DryRun selects and reports the allocation without writing.
	DryRun bool
	// Steps prunes toward the ratio in this many steps (pruner.RunSteps).
	Steps int
	// SynthCalib: neither --calib nor --criterion was given, and the
	// default scores by OBS with sensitivity allocation on synthesized
	// inputs (prune_synth.go) where the model allows; SynthNote says
	// what was done.
	SynthCalib bool
	SynthNote  string
	// DataDefault is set when --calib without --criterion chose the
	// data-aware default path (defaultWithCalib).
	DataDefault string
	// Search is set when that default searches the candidate paths
	// (pruner.RunSearch): no criterion, allocation, steps or kinds given.
	Search bool
	// SearchMode is --search (pruner.SearchConfig.Candidates);
	// SearchSet whether it was given.
	SearchMode string
	SearchSet  bool
	// OBSOrderSet is whether --obs-order was given (its value is
	// Criteria.OBSOrder).
	OBSOrderSet bool
	// KeepOrder leaves the channels inside grouped convolutions' groups
	// in the file's order (pruner.AlignBlocks not run).
	KeepOrder bool
}

// pruneResult is what pare prune reports (docs/PRUNING.md lists the JSON).
type pruneResult struct {
	Model        string             `json:"model"`
	Output       string             `json:"output"`
	DryRun       bool               `json:"dry_run,omitempty"`
	Mode         string             `json:"mode"` // structured, unstructured or n:m
	Settings     *prune.Settings    `json:"settings,omitempty"`
	Before       modelSize          `json:"before"`
	After        modelSize          `json:"after"`
	Groups       []groupRow         `json:"groups,omitempty"`
	Layers       []prune.LayerStats `json:"layers,omitempty"`
	Sparsity     float64            `json:"sparsity,omitempty"`
	FrozenGroups int                `json:"frozen_groups"`
	// Notes are the criterion's and recovery steps' remarks;
	// ForwardPasses counts zeroth-order model runs.
	Notes []string `json:"notes,omitempty"`
	// Interface lists the model inputs and outputs that lost positions
	// (a KV cache's heads), with the original positions kept.
	Interface     ioslice.Map `json:"interface,omitempty"`
	ForwardPasses int         `json:"forward_passes,omitempty"`
	// Search is the default search's candidates, their held-out scores
	// and the one picked (--calib without a criterion).
	Search *pruner.Search `json:"search,omitempty"`
	// Verify says whether onnxruntime ran the result before it was
	// written ("ok") or why not.
	Verify string `json:"verify"`
}

type modelSize struct {
	Params int64 `json:"params"`
	MACs   int64 `json:"macs"`
	Bytes  int64 `json:"bytes"`
}

type groupRow struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Size    int    `json:"size"`
	Kept    int    `json:"kept"`
	Frozen  string `json:"frozen,omitempty"`
	Inexact string `json:"inexact,omitempty"`
	Kind    string `json:"kind,omitempty"`
	// Sensitivity is the group's measured sensitivity on calibration
	// data, for criteria that measure one (zeroth).
	Sensitivity *float64 `json:"sensitivity,omitempty"`
	// PerIndex is the output channels one index of a channel group
	// stands for when more than one (a grouped Conv's offset: one
	// channel per group); 0 otherwise.
	PerIndex int `json:"channels_per_index,omitempty"`
}

// channelsPerIndex is the most output channels of one layer that an
// index of a channel group covers, when above 1: a grouped Conv's
// offset is g channels. Heads and MLP widths say what they count.
func channelsPerIndex(g prune.PlanGroup) int {
	if g.Kind != prune.KindChannels {
		return 0
	}
	most := 0
	for _, m := range g.Members {
		if m.Kind != prune.KindWeightOut {
			continue
		}
		count := map[int]int{}
		for _, idx := range m.Map {
			if idx >= 0 {
				count[idx]++
			}
		}
		for _, c := range count {
			most = max(most, c)
		}
	}
	if most < 2 {
		return 0
	}
	return most
}

func init() { inspectGroups, inspectGroupsText = groupsForInspect, printGroups }

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "remove coupled channels (structured) or zero weights (unstructured, N:M)",
		ArgsUsage: "MODEL",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "pruned model path"},
			inputShapeFlag("for MACs (--target macs) and the reported counts"),
			&cli.BoolFlag{Name: "in-place", Usage: "allow -o to be MODEL"},
			&cli.FloatFlag{Name: "ratio", Usage: "fraction removed, of --target"},
			&cli.StringFlag{Name: "criterion", Value: "magnitude", Usage: "magnitude, l1, l2, random, obs, wanda, flap, module, zeroth or taylor (with --calib and no criterion: obs + --reconstruct, the allocation and steps searched on held-out calibration samples)"},
			&cli.StringFlag{Name: "norm", Value: "l2", Usage: "magnitude norm: l1 or l2"},
			&cli.StringFlag{Name: "scope", Value: "global", Usage: "global (one ranking) or local (same ratio per group)"},
			&cli.StringFlag{Name: "target", Value: "channels", Usage: "channels, params, macs or latency (onnxruntime latency on this machine, from a per-layer table measured once and cached)"},
			&cli.FloatFlag{Name: "max-layer-ratio", Value: 0.8, Usage: "most of any group (or layer, unstructured) removed"},
			&cli.IntFlag{Name: "round-to", Value: prune.DefaultRoundTo, Usage: "kept channel and MLP-width counts are multiples of N, for the runtime's kernels (1: exact counts; attention heads are never rounded)"},
			&cli.StringFlag{Name: "ignore", Usage: "REGEX of node or initializer names whose groups stay whole"},
			&cli.StringFlag{Name: "plan-in", Usage: "replay this plan"},
			&cli.StringFlag{Name: "plan-out", Usage: "write the plan here"},
			&cli.BoolFlag{Name: "unstructured", Usage: "zero weights by global magnitude instead of removing channels"},
			&cli.FloatFlag{Name: "sparsity", Usage: "unstructured: fraction of Conv/Gemm/MatMul weights zeroed"},
			&cli.StringFlag{Name: "nm", Usage: "N:M semi-structured masks, for example 2:4"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed for --criterion random and zeroth"},
			&cli.StringFlag{Name: "calib", Usage: "calibration inputs (.npy or .npz) for obs, wanda, flap, zeroth, taylor and recovery; token sequences [N, T] (.npy) for a decoding step with a key/value cache are decoded into its inputs"},
			&cli.IntFlag{Name: "calib-samples", Usage: "use at most N calibration samples (0: all)"},
			&cli.BoolFlag{Name: "data-free", Usage: "obs: layer input statistics from BatchNormalization instead of --calib"},
			&cli.BoolFlag{Name: "recalibrate-bn", Usage: "after pruning, re-estimate BatchNormalization statistics (folded: match layer output mean/std)"},
			&cli.BoolFlag{Name: "reconstruct", Usage: "after pruning, re-fit pruned layers by least squares to the dense outputs"},
			&cli.BoolFlag{Name: "reconstruct-blocks", Usage: "with --reconstruct: fit the last layer of each residual block (ResNet block, attention output, fc2) to the dense block output instead of its own"},
			&cli.StringFlag{Name: "recover", Usage: "after pruning, kd: distil the pruned model toward the dense model's outputs on --calib (Adam, gradients through gorgonia) and write the trained weights", Validator: func(v string) error {
				if v != "" && v != "kd" {
					return fmt.Errorf("--recover %q: want kd", v)
				}
				return nil
			}},
			&cli.IntFlag{Name: "fit-blocks", HideDefault: true, Usage: "train each block (the layers between two values all data flows through) by Adam toward the unpruned model's block outputs on the calibration data, `N` steps per block, after --reconstruct or the default search's pick (default on the default search: 40 passes over the calibration samples, at least 200 steps, while the pruned model's MACs × 64 × the steps stay within 1e11, 5e11 from 1024 samples, else 0; 0: off)"},
			&cli.FloatFlag{Name: "fit-output", HideDefault: true, Usage: "weight `W` in [0, 1) of the model output's error in each inner block's loss of the block fit, read through the pruned layers after the block (frozen); helps with 1000 or more calibration samples, for 2-4.5 times the fit's CPU (default: 0.5 on the default search from 1024 calibration samples when the fit with it stays within 5e11 multiply-accumulates, else 0; 0: each block matches its own output)", Validator: func(w float64) error {
				if w < 0 || w >= 1 {
					return fmt.Errorf("--fit-output %g: want a weight in [0, 1)", w)
				}
				return nil
			}},
			&cli.IntFlag{Name: "recover-steps", Value: 200, Usage: "optimizer steps of --recover kd (one calibration batch of 32 each)"},
			&cli.StringFlag{Name: "recover-schedule", Value: recovery.DefaultSchedule, Usage: "learning rate over the --recover kd steps: cosine (decays from 1e-3 to 0) or constant (1e-3)", Validator: func(v string) error {
				if v != recovery.ScheduleConstant && v != recovery.ScheduleCosine {
					return fmt.Errorf("--recover-schedule %q: want %s or %s", v, recovery.ScheduleCosine, recovery.ScheduleConstant)
				}
				return nil
			}},
			&cli.BoolFlag{Name: "recover-mixup", Value: recovery.DefaultMixup, Usage: "--recover kd trains on mixes of two unlabelled inputs (weights uniform in [0, 1]) toward the dense model's outputs on the same mixes; float inputs only, token ids keep plain batches (off: plain batches of the data)"},
			&cli.StringFlag{Name: "recover-data", Usage: "unlabelled inputs (.npy or .npz) to distil on with --recover kd instead of --calib (more samples than --calib keep it from overfitting; token-id windows for a decoder)"},
			&cli.IntFlag{Name: "zo-budget", Value: importance.DefaultZOBudget, Usage: "zeroth: most forward passes"},
			&cli.StringFlag{Name: "zo-local", Value: "magnitude", Usage: "zeroth: criterion inside each group, magnitude or wanda"},
			&cli.FloatFlag{Name: "zo-smax", Usage: "zeroth: largest fraction of a group removed (default --max-layer-ratio)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
			&cli.FloatFlag{Name: "heads", Usage: "fraction of attention heads removed in every attention layer (grouped-query attention: query heads, the same number in every KV group)"},
			&cli.FloatFlag{Name: "kv-groups", Usage: "grouped-query attention: fraction of whole KV groups removed (a key/value head with its query heads), ranked across layers; with --scope local the same number in every layer, as a runtime with one KV head count for all layers needs"},
			&cli.FloatFlag{Name: "mlp", Usage: "fraction of MLP hidden width removed in every MLP"},
			&cli.FloatFlag{Name: "embed", Usage: "fraction of embedding (layer-norm) width removed in every such group; implies --prune-embed"},
			&cli.BoolFlag{Name: "prune-embed", Usage: "let --ratio select embedding/residual width too (changes layer-norm statistics)"},
			&cli.BoolFlag{Name: "head-dim", Usage: "prune head_dim uniformly across heads instead of whole heads"},
			&cli.BoolFlag{Name: "conv-groups", Usage: "prune grouped convolutions by whole groups (group count falls, group width stays) instead of the same offset inside every group"},
			&cli.BoolFlag{Name: "keep-order", Usage: "keep the file's channel order inside the groups of grouped convolutions (with --calib they are otherwise sorted by OBS cost first, so that an offset removes each group's cheapest channel)"},
			&cli.BoolFlag{Name: "keep-interface", Usage: "never change the model's input and output sizes: a KV cache's heads (past/present) freeze instead of shrinking with the removed KV groups or head dims"},
			&cli.StringFlag{Name: "obs-order", Value: importance.OBSGreedy, Usage: "obs: greedy (remove a group's channels one at a time, re-costing the rest after each optimal update) or one-shot (cost every channel as if it alone went)", Validator: func(v string) error {
				if !slices.Contains(importance.OBSOrders, v) {
					return fmt.Errorf("--obs-order %q: want one of %s", v, strings.Join(importance.OBSOrders, ", "))
				}
				return nil
			}},
			&cli.StringFlag{Name: "allocate", Value: "global", Usage: "how --ratio is shared among groups: global (one ranking of the scores) or sensitivity (per-group ratios from the output error each group causes on --calib data)"},
			&cli.IntFlag{Name: "steps", Value: 1, Usage: "prune toward --ratio in N steps, re-collecting statistics (and compensating, reconstructing) on the pruned model at each"},
			&cli.StringFlag{Name: "search", Value: "auto", Usage: "the default with --calib alone: full (every candidate path), one-step (the one-step candidates) or auto (full up to 100M parameters, one-step past it)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "structured: print the per-group allocation (and measured sensitivity, zeroth) and write nothing; -o not needed"},
			&cli.BoolFlag{Name: "no-verify", Usage: "write the result without running it once in onnxruntime first"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usageErrorf("prune takes one MODEL argument, got %d", cmd.Args().Len())
			}
			opts := pruneOptionsFrom(cmd)
			pctx, done := withProgressBar(ctx, opts.JSON)
			res, err := runPrune(pctx, opts)
			done()
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(cmd.Root().Writer, res)
			}
			return printPruneText(cmd.Root().Writer, res)
		},
	}
}

func (o pruneOptions) validate() error {
	if o.DryRun {
		if o.Unstructured || o.NM != "" {
			return usageErrorf("prune: --dry-run shows a structured allocation; it does not apply to --unstructured or --nm")
		}
		if o.PlanOut != "" {
			return usageErrorf("prune: --dry-run writes nothing, --plan-out included")
		}
		return o.validateModeFlags()
	}
	if o.Output == "" {
		return usageErrorf("prune: -o OUT is required")
	}
	if same, err := samePath(o.Model, o.Output); err != nil {
		return fmt.Errorf("prune: %w", err)
	} else if same && !o.InPlace {
		return usageErrorf("prune: -o %s would overwrite MODEL (use --in-place)", o.Output)
	}
	if o.PlanIn != "" && o.PlanOut != "" {
		return usageErrorf("prune: --plan-in and --plan-out exclude each other")
	}
	if o.Unstructured && o.NM != "" {
		return usageErrorf("prune: --unstructured and --nm exclude each other")
	}
	if (o.Unstructured || o.NM != "") && (o.PlanIn != "" || o.PlanOut != "") {
		return usageErrorf("prune: plans describe structured pruning only")
	}
	return o.validateModeFlags()
}

// validateModeFlags refuses settings the chosen mode would ignore, so
// that pare never writes an unchanged model as if it had pruned.
func (o pruneOptions) validateModeFlags() error {
	if o.SearchSet {
		if !slices.Contains(pruner.SearchModes, o.SearchMode) {
			return usageErrorf("prune: --search %q: want one of %s", o.SearchMode, strings.Join(pruner.SearchModes, ", "))
		}
		if !o.Search {
			return usageErrorf("prune: --search applies to the default with --calib alone (no --criterion, --allocate, --steps, kind ratios, --prune-embed, --head-dim or --target latency)")
		}
	}
	if o.OBSOrderSet && (o.Settings.Criterion != "obs" || o.PlanIn != "") {
		return usageErrorf("prune: --obs-order applies to the obs criterion when it selects (--criterion obs, or the defaults with and without --calib), not to %s", o.criterionName())
	}
	sparse := o.Unstructured || o.NM != ""
	if o.KeepOrder && (sparse || o.Criteria.Calib == "" && !o.SynthCalib || o.PlanIn != "" || o.PlanOut != "" || o.ConvGroups) {
		return usageErrorf("prune: --keep-order applies to structured pruning with --calib, which otherwise reorders the channels inside grouped convolutions' groups; without data, with --plan-in or --plan-out, and with --conv-groups (whole groups go), the file's order is kept anyway")
	}
	if o.ConvGroups && sparse {
		return usageErrorf("prune: --conv-groups chooses what structured pruning removes from grouped convolutions; --unstructured and --nm remove weights, not channels")
	}
	mode := "--unstructured"
	if o.NM != "" {
		mode = "--nm"
	}
	switch {
	case sparse && o.Settings.Ratio != 0:
		return usageErrorf("prune: --ratio has no effect with %s (use --sparsity with --unstructured)", mode)
	case sparse && len(o.Settings.KindRatios) > 0:
		return usageErrorf("prune: --heads, --mlp and --embed have no effect with %s", mode)
	case o.NM != "" && o.Sparsity != 0:
		return usageErrorf("prune: --sparsity has no effect with --nm (the pattern sets it)")
	case o.Unstructured && (o.Sparsity <= 0 || o.Sparsity >= 1):
		return usageErrorf("prune: --unstructured needs --sparsity in (0, 1), got %g", o.Sparsity)
	case !sparse && o.Sparsity != 0:
		return usageErrorf("prune: --sparsity needs --unstructured")
	case o.Criteria.CalibSamples < 0:
		return usageErrorf("prune: --calib-samples must be 0 (all) or more, got %d", o.Criteria.CalibSamples)
	case o.Criteria.CalibSamples > maxSamples:
		return usageErrorf("prune: --calib-samples %d is over the limit of %d", o.Criteria.CalibSamples, maxSamples)
	}
	return nil
}

func runPrune(ctx context.Context, o pruneOptions) (*pruneResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	m, err := graph.Load(o.Model)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	shapes, err := inputShapes(o.InputShape)
	if err != nil {
		return nil, err
	}
	if err := fixInputShapes(m, shapes); err != nil {
		return nil, err
	}
	if sym := m.SymbolicSizes(); len(sym) > 0 && (o.Settings.Target == "macs" || o.Settings.Target == "latency") && !o.Unstructured && o.NM == "" {
		return nil, usageErrorf("prune: --target %s: %s unknown with symbolic input sizes %s: give --input-shape", o.Settings.Target, map[string]string{"macs": "MACs are", "latency": "layer latencies are"}[o.Settings.Target], strings.Join(sym, ", "))
	}
	if o.Settings.Target == "macs" && !o.Unstructured && o.NM == "" {
		// A MACs target is met on the counted MACs; nodes whose shapes
		// inference cannot follow would make the report's change wrong.
		if c, err := graph.Count(m); err == nil && len(c.Uncounted) > 0 {
			return nil, usageErrorf("prune: --target macs: the MACs of %d nodes are unknown (their shapes are not inferred; first: %s): use --target params", len(c.Uncounted), c.Uncounted[0])
		}
	}
	res := &pruneResult{Model: o.Model, Output: o.Output}
	if res.Before, err = sizeOf(m); err != nil {
		return nil, err
	}
	if o.Criteria.Calib != "" {
		// A decoding step with a cache is fed token sequences by decoding them.
		npz, note, cleanup, err := stepCalib(ctx, "prune", m, o.Criteria.Calib, synthSamples*synthPositions, 0, o.OrtLib)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		if npz != "" {
			o.SynthNote = note
			o.Criteria.Calib, o.Criteria.CalibName = npz, o.Criteria.Calib
		}
	}
	if o.SynthCalib {
		path, what, why, n, cleanup, err := synthesizeCalib(ctx, m, o.Settings.Seed, o.OrtLib)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		if path == "" {
			o.Settings.Criterion, o.Criteria.Allocate = "magnitude", ""
			o.SynthNote = "default without --calib: magnitude (inputs not synthesized: " + why + "); --calib data for the data-aware default"
		} else {
			o.Criteria.Calib, o.Criteria.CalibName, o.Criteria.SensitivityOrGlobal = path, prune.SyntheticCalib, true
			o.SynthNote = fmt.Sprintf("default without --calib: obs + sensitivity allocation on %d synthesized inputs (%s); --calib data for the data-aware default, --criterion magnitude for weights alone", n, what)
		}
	}
	switch {
	case o.Unstructured || o.NM != "":
		if err := runSparsify(ctx, m, o, res); err != nil {
			return nil, err
		}
	default:
		if err := runStructured(ctx, m, o, res); err != nil {
			return nil, err
		}
	}
	if err := requireChange(o, res); err != nil {
		return nil, err
	}
	if o.DryRun {
		return res, nil
	}
	// Everything that can reject the pruned model runs before it is
	// written: a model that fails here never reaches the output path.
	if res.After, err = sizeOf(m); err != nil {
		return nil, fmt.Errorf("%w (nothing written)", err)
	}
	if err := graph.CheckInvariants(m); err != nil {
		return nil, fmt.Errorf("prune: the pruned model is invalid, nothing written: %w", err)
	}
	if res.Verify, err = saveVerified(ctx, "prune", m, o.Output, graph.SaveOptions{InPlace: o.InPlace}, o.Model, o.Criteria.Calib, o.OrtLib, o.NoVerify); err != nil {
		return nil, err
	}
	return res, nil
}

// requireChange refuses a run that was asked to remove something
// (a ratio or sparsity above 0) and removed nothing, instead of writing
// an unchanged copy. A ratio of 0 asks for nothing and passes.
func requireChange(o pruneOptions, res *pruneResult) error {
	switch res.Mode {
	case "structured":
		if o.PlanIn != "" {
			return nil
		}
		asked := o.Settings.Ratio > 0
		for _, r := range o.Settings.KindRatios {
			asked = asked || r > 0
		}
		removed := 0
		for _, g := range res.Groups {
			removed += g.Size - g.Kept
		}
		if asked && removed == 0 {
			return fmt.Errorf("prune: %w: the settings remove no channel (%d groups, %d frozen; a larger --ratio or a smaller --round-to may): nothing written",
				errNothingChanged, len(res.Groups), res.FrozenGroups)
		}
	default:
		if (o.Sparsity > 0 || o.NM != "") && res.Sparsity == 0 {
			return fmt.Errorf("prune: %w: %s zeroes no weight: nothing written", errNothingChanged, res.Mode)
		}
	}
	return nil
}

// reorderGroupedConvs sorts the channels inside grouped convolutions'
// groups by their OBS cost on the calibration data (pruner.AlignBlocks;
// an stays m's analysis) and returns the note for the report. Without
// data, with --keep-order, or when a plan is written (its indices are
// the offsets of the file as given) m is left as it is.
func reorderGroupedConvs(ctx context.Context, m *graph.Model, an *prune.Analysis, o pruneOptions) (string, error) {
	if o.Criteria.Calib == "" || o.KeepOrder || o.PlanOut != "" {
		return "", nil
	}
	cfg := o.Criteria
	cfg.Settings = o.Settings
	return pruner.AlignBlocks(ctx, m, an, cfg)
}

func runStructured(ctx context.Context, m *graph.Model, o pruneOptions, res *pruneResult) error {
	res.Mode = "structured"
	var re *regexp.Regexp
	if o.Settings.Ignore != "" {
		var err error
		if re, err = regexp.Compile(o.Settings.Ignore); err != nil {
			return usageErrorf("prune: --ignore: %v", err)
		}
	}
	var plan *prune.Plan
	if o.PlanIn != "" {
		f, err := os.Open(o.PlanIn)
		if err != nil {
			return usageErrorf("prune: %v", err)
		}
		plan, err = prune.ReadPlan(f)
		f.Close()
		if err != nil {
			return err
		}
		if po := plan.Settings.Options; po != nil && po.Calib == prune.SyntheticCalib && o.Criteria.Calib == "" {
			// Made on synthesized inputs: the same seed makes them again.
			path, _, why, _, cleanup, err := synthesizeCalib(ctx, m, plan.Settings.Seed, o.OrtLib)
			if err != nil {
				return err
			}
			defer cleanup()
			if path == "" {
				return usageErrorf("prune: --plan-in: the plan was made on synthesized inputs, which cannot be made again here (%s): give --calib", why)
			}
			o.Criteria.Calib, o.Criteria.CalibName = path, prune.SyntheticCalib
		}
	}
	// A plan made with --head-dim replays with it.
	headDim := o.HeadDim || (plan != nil && plan.Settings.HeadDim)
	kvGroups := o.KVGroups || (plan != nil && plan.Settings.KVGroups)
	keepIO := o.KeepInterface || (plan != nil && plan.Settings.KeepInterface)
	convGroups := o.ConvGroups || (plan != nil && plan.Settings.ConvGroups)
	progress.Report(ctx, "analysis", 0, 0)
	an, err := prune.Analyze(m, prune.Options{Ignore: re, HeadDim: headDim, KVGroups: kvGroups, KeepInterface: keepIO, ConvGroups: convGroups})
	if err != nil {
		return err
	}
	if plan == nil {
		if err := requireKinds(an.Groups, o.Settings.KindRatios); err != nil {
			return err
		}
	}
	var alignNote string
	if plan == nil {
		if alignNote, err = reorderGroupedConvs(ctx, m, an, o); err != nil {
			return err
		}
	}
	var latencyNote string
	if o.Settings.Target == "latency" && plan == nil {
		if o.Steps > 1 {
			return usageErrorf("prune: --target latency is one-step; --steps counts params or MACs between steps")
		}
		if err := ort.Init(o.OrtLib); err != nil {
			return err
		}
		lm, err := latency.Build(ctx, m, an, latency.Options{})
		if err != nil {
			return err
		}
		an.SetLatency(lm)
		latencyNote = fmt.Sprintf("latency table: %d layers, %d measurements made, %d from the cache", len(an.Layers()), lm.Measured, lm.Cached)
	}
	cfg := o.Criteria
	cfg.Settings, cfg.Norm, cfg.DryRun = o.Settings, o.Norm, o.DryRun
	ioBefore, err := ioslice.FromModel(m.Proto)
	if err != nil {
		return err
	}
	if fitted := cfg.FitBlocks > 0 || cfg.FitBlocks < 0 && o.Search && plan == nil; cfg.FitOutput > 0 && !fitted {
		return usageErrorf("prune: --fit-output weighs the block fit's loss: give --fit-blocks N (with --reconstruct) or use the default search")
	}
	var out *pruner.Outcome
	switch {
	case o.Search && plan == nil:
		// A written plan replays one step: the search keeps to one-step
		// candidates then.
		sc := pruner.SearchConfig{OneStep: o.PlanOut != "", Candidates: o.SearchMode}
		out, res.Search, err = pruner.RunSearch(ctx, m, an.Options(), cfg, sc)
	case o.Steps > 1 || cfg.FitBlocks > 0 && !o.Search:
		if plan != nil || o.PlanOut != "" {
			return usageErrorf("prune: --steps and --fit-blocks run after selection from the data; --plan-in and --plan-out replay one step")
		}
		out, err = pruner.RunSteps(ctx, m, an.Options(), cfg, o.Steps)
	default:
		var measured []string
		if latencyNote != "" && o.Settings.Ratio > 0 {
			// The table's plan is measured whole and its budget
			// corrected (prune_latency.go); the chosen plan is applied
			// as a replay.
			if plan, measured, err = measuredLatencyPlan(ctx, m, an, cfg); err != nil {
				return err
			}
		}
		out, err = pruner.Run(ctx, m, an, plan, cfg)
		if out != nil {
			out.Notes = append(out.Notes, measured...)
		}
	}
	if err != nil {
		return err
	}
	if o.DryRun {
		// Nothing is applied: the after column is the plan's cost.
		res.DryRun, res.Output = true, ""
		res.After = modelSize{Params: out.Plan.After.Params, MACs: out.Plan.After.MACs}
	}
	plan, res.Notes, res.ForwardPasses = out.Plan, out.Notes, out.ForwardPasses
	if alignNote != "" {
		res.Notes = append([]string{alignNote}, res.Notes...)
	}
	if !o.DryRun {
		ioAfter, err := ioslice.FromModel(m.Proto)
		if err != nil {
			return err
		}
		if ch := ioslice.Changes(ioBefore, ioAfter); len(ch) > 0 {
			res.Interface = ch
			res.Notes = append(res.Notes, "interface: "+ch.Summary())
			if note := genaiNote(o.Model, m); note != "" {
				res.Notes = append(res.Notes, note)
			}
		}
	}
	if latencyNote != "" {
		p := out.Plan
		res.Notes = append(res.Notes, latencyNote, fmt.Sprintf("latency estimate (onnxruntime, batch 1, one thread): %.0f µs → %.0f µs (%.2f×)",
			p.Before.LatencyUs, p.After.LatencyUs, p.After.LatencyUs/max(p.Before.LatencyUs, 1e-9)))
	}
	if o.SynthNote != "" {
		res.Notes = append([]string{o.SynthNote}, res.Notes...)
	}
	if o.DataDefault != "" && o.PlanIn == "" {
		res.Notes = append([]string{"default with --calib: " + o.DataDefault + " (--criterion magnitude for the data-free path)"}, res.Notes...)
	}
	res.Settings = &plan.Settings
	for _, g := range plan.Groups {
		row := groupRow{ID: g.ID, Name: g.Name, Size: g.Size, Kept: len(g.Kept), Frozen: g.Reason, Inexact: g.Inexact, Kind: g.Kind,
			PerIndex: channelsPerIndex(g)}
		if v, ok := out.Sensitivity[g.ID]; ok {
			row.Sensitivity = &v
		}
		if g.Frozen {
			row.Kept = g.Size
			res.FrozenGroups++
		}
		res.Groups = append(res.Groups, row)
	}
	if o.PlanOut != "" {
		var b strings.Builder
		if err := prune.WritePlan(&b, plan); err != nil {
			return err
		}
		if err := graph.WriteFile(o.PlanOut, []byte(b.String())); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

func runSparsify(ctx context.Context, m *graph.Model, o pruneOptions, res *pruneResult) error {
	var st *prune.SparsityReport
	var err error
	if o.NM != "" {
		res.Mode = "n:m " + o.NM
		n, mm, perr := parseNM(o.NM)
		if perr != nil {
			return perr
		}
		st, err = prune.NM(m, n, mm)
	} else {
		res.Mode = "unstructured"
		switch o.Settings.Criterion {
		case "wanda", "module":
			res.Mode += " " + o.Settings.Criterion
			st, err = importance.Sparsify(ctx, m, o.Settings.Criterion, o.Sparsity, o.Settings.MaxLayerRatio, o.Criteria.Calib, o.Criteria.CalibSamples)
		default:
			st, err = prune.Unstructured(m, prune.UnstructuredOptions{Sparsity: o.Sparsity, MaxLayer: o.Settings.MaxLayerRatio})
		}
	}
	if err != nil {
		return err
	}
	res.Layers, res.Sparsity = st.Layers, st.Sparsity
	return nil
}

func parseNM(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ":")
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n <= 0 || m <= n {
		return 0, 0, usageErrorf("prune: --nm %q: want N:M with 0 < N < M", s)
	}
	return n, m, nil
}

func sizeOf(m *graph.Model) (modelSize, error) {
	c, err := graph.Count(m)
	if err != nil {
		return modelSize{}, fmt.Errorf("prune: count: %w", err)
	}
	// The encoded size without encoding: a 100 MB model is otherwise
	// marshalled twice more just to be measured.
	n := proto.MarshalOptions{Deterministic: true}.Size(m.Proto)
	return modelSize{Params: c.Params, MACs: c.MACs, Bytes: int64(n)}, nil
}

func printPruneText(w io.Writer, r *pruneResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tbefore\tafter\tchange\t\n")
	row := func(k string, a, b int64) {
		ch := 0.0
		if a > 0 {
			ch = 100 * float64(b-a) / float64(a)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%+.1f%%\t\n", k, a, b, ch)
	}
	row("params", r.Before.Params, r.After.Params)
	row("MACs", r.Before.MACs, r.After.MACs)
	if !r.DryRun {
		row("bytes", r.Before.Bytes, r.After.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.DryRun {
		fmt.Fprintf(w, "\n%s: dry run (%s), nothing written\n", r.Model, r.Mode)
	} else {
		fmt.Fprintf(w, "\n%s -> %s (%s)\n", r.Model, r.Output, r.Mode)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Verify != "ok" && !r.DryRun {
		fmt.Fprintf(w, "note: onnxruntime verification %s\n", r.Verify)
	}
	if err := printSearch(w, r.Search); err != nil {
		return err
	}
	if len(r.Groups) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\ngroup\tkind\tfirst layer\tchannels kept\tremoved\tsensitivity\tnote\n")
		for _, g := range r.Groups {
			if g.Frozen != "" {
				continue
			}
			var notes []string
			if g.PerIndex > 1 {
				notes = append(notes, fmt.Sprintf("%d channels of a layer per index", g.PerIndex))
			}
			if g.Inexact != "" {
				notes = append(notes, "inexact: "+g.Inexact)
			}
			note := strings.Join(notes, "; ")
			sens := "-"
			if g.Sensitivity != nil {
				sens = fmt.Sprintf("%.4g", *g.Sensitivity)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%.0f%%\t%s\t%s\n", g.ID, g.Kind, g.Name, g.Kept, g.Size, 100*float64(g.Size-g.Kept)/float64(max(g.Size, 1)), sens, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d frozen groups:\n", r.FrozenGroups)
		for _, g := range r.Groups {
			if g.Frozen != "" {
				fmt.Fprintf(w, "  %d %s (%d channels): %s\n", g.ID, g.Name, g.Size, g.Frozen)
			}
		}
	}
	if len(r.Layers) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\nweight\tnode\tzeros\tsparsity\n")
		for _, l := range r.Layers {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.3f\n", l.Tensor, l.Node, l.Zeros, l.Size, l.Sparsity)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nachieved sparsity %.4f\n", r.Sparsity)
	}
	return nil
}

// groupsForInspect lists the coupled channel groups for pare inspect
// --groups.
func groupsForInspect(_ context.Context, m *graph.Model) (any, any, error) {
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		return nil, nil, err
	}
	// Grouped-query attention: the --kv-groups analysis groups KV heads
	// with their query heads; list it when it finds any.
	kv, err := prune.Analyze(m, prune.Options{KVGroups: true})
	if err != nil {
		return nil, nil, err
	}
	for _, g := range kv.Groups {
		if g.Kind == prune.KindKVGroups {
			return an.Groups, kv.Groups, nil
		}
	}
	return an.Groups, nil, nil
}

// printGroups prints one row per group (id, kind, first layer, size,
// prunable or why frozen, tied and copied constants), then the KV groups
// of the --kv-groups analysis.
func printGroups(w io.Writer, groups, kv any) error {
	row := func(tw *tabwriter.Writer, g *prune.Group) {
		status := "prunable"
		if g.Frozen {
			status = "frozen: " + g.Reason
		} else if g.Inexact != "" {
			status = "prunable, inexact: " + g.Inexact
		}
		var notes []string
		copies := 0
		for _, m := range g.Members {
			if m.Copy {
				copies++
			}
			if len(m.SharedWith) > 0 {
				notes = append(notes, fmt.Sprintf("%s tied with %s", m.Tensor, strings.Join(m.SharedWith, ", ")))
			}
		}
		if copies > 0 {
			notes = append(notes, fmt.Sprintf("%d shared constant fills copied per reader", copies))
		}
		if len(g.Interface) > 0 && !g.Frozen {
			notes = append(notes, "shrinks model inputs/outputs "+strings.Join(g.Interface, ", "))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", g.ID, g.Kind, g.Name, g.Size, status, strings.Join(notes, "; "))
	}
	table := func(gs []*prune.Group, only string) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "id\tkind\tfirst layer\tchannels\tstatus\tnotes")
		for _, g := range gs {
			if only == "" || g.Kind == only {
				row(tw, g)
			}
		}
		return tw.Flush()
	}
	gs, _ := groups.([]*prune.Group)
	if err := table(gs, ""); err != nil {
		return err
	}
	if k, ok := kv.([]*prune.Group); ok && k != nil {
		fmt.Fprintln(w, "\nKV groups (pare prune --kv-groups: a key/value head with its query heads)")
		return table(k, prune.KindKVGroups)
	}
	return nil
}

// criterionName names what selects for a refusal: the replayed plan,
// or the criterion.
func (o pruneOptions) criterionName() string {
	switch {
	case o.PlanIn != "":
		return "a replayed plan (--plan-in)"
	case o.Settings.Criterion == "":
		return "the default magnitude criterion"
	}
	return "criterion " + o.Settings.Criterion
}

// fitBlocks is --fit-blocks, or -1 (the default search's choice:
// pruner.autoFitSteps: AutoFitEpochs passes over the calibration samples,
// at least AutoFitSteps, within pruner.AutoFitBudget, or
// pruner.AutoFitLargeBudget from pruner.AutoFitLargeSamples) when not
// given.
func fitBlocks(cmd *cli.Command) int {
	if !cmd.IsSet("fit-blocks") {
		return -1
	}
	return max(int(cmd.Int("fit-blocks")), 0)
}

// fitOutput is --fit-output, or -1 (the default search's choice:
// pruner.autoFitOutput, on from pruner.AutoFitLargeSamples samples
// within pruner.AutoFitLargeBudget) when not given.
func fitOutput(cmd *cli.Command) float64 {
	if !cmd.IsSet("fit-output") {
		return -1
	}
	return cmd.Float("fit-output")
}

// recoverSteps is the distillation steps asked for: --recover-steps with
// --recover kd, else 0.
func recoverSteps(cmd *cli.Command) int {
	if cmd.String("recover") != "kd" {
		return 0
	}
	return max(int(cmd.Int("recover-steps")), 0)
}

// pruneOptionsFrom reads pare prune's flags and argument; pare run reads
// recipe steps through it too.
func pruneOptionsFrom(cmd *cli.Command) pruneOptions {
	opts := pruneOptions{
		Model: cmd.Args().First(), Output: cmd.String("output"), InPlace: cmd.Bool("in-place"),
		InputShape: cmd.String("input-shape"),
		Settings: prune.Settings{
			Criterion: cmd.String("criterion"), Scope: cmd.String("scope"), Target: cmd.String("target"),
			Ratio: cmd.Float("ratio"), MaxLayerRatio: cmd.Float("max-layer-ratio"),
			RoundTo: int(cmd.Int("round-to")), Ignore: cmd.String("ignore"), Seed: cmd.Uint64("seed"),
			// The default rounding gives way where it cannot meet
			// the target; an explicit --round-to does not.
			RoundSoft: !cmd.IsSet("round-to"),
		},
		Norm:   cmd.String("norm"),
		PlanIn: cmd.String("plan-in"), PlanOut: cmd.String("plan-out"),
		Unstructured: cmd.Bool("unstructured"), Sparsity: cmd.Float("sparsity"), NM: cmd.String("nm"),
		JSON: cmd.Bool("json"), HeadDim: cmd.Bool("head-dim"), KVGroups: cmd.IsSet("kv-groups"), KeepInterface: cmd.Bool("keep-interface"),
		ConvGroups: cmd.Bool("conv-groups"),
		NoVerify:   cmd.Bool("no-verify"), OrtLib: cmd.Root().String("ort-lib"), DryRun: cmd.Bool("dry-run"), Steps: int(cmd.Int("steps")),
		SearchMode: cmd.String("search"), SearchSet: cmd.IsSet("search"), OBSOrderSet: cmd.IsSet("obs-order"), KeepOrder: cmd.Bool("keep-order"),
		Criteria: pruner.Config{
			Calib: cmd.String("calib"), CalibSamples: int(cmd.Int("calib-samples")), DataFree: cmd.Bool("data-free"), OBSOrder: cmd.String("obs-order"),
			RecalibrateBN: cmd.Bool("recalibrate-bn"), Reconstruct: cmd.Bool("reconstruct"), ReconstructBlocks: cmd.Bool("reconstruct-blocks"), Allocate: cmd.String("allocate"),
			FitBlocks: fitBlocks(cmd), FitOutput: fitOutput(cmd), RecoverKD: recoverSteps(cmd), RecoverData: cmd.String("recover-data"),
			RecoverSchedule: cmd.String("recover-schedule"), RecoverMixup: cmd.Bool("recover-mixup"),
			ZOBudget: int(cmd.Int("zo-budget")), ZOLocal: cmd.String("zo-local"), ZOSMax: cmd.Float("zo-smax"),
		},
	}
	opts.Settings.PruneEmbed = cmd.Bool("prune-embed")
	opts.Settings.HeadDim = opts.HeadDim
	opts.Settings.KeepInterface = opts.KeepInterface
	opts.Settings.KVGroups = opts.KVGroups
	opts.Settings.ConvGroups = opts.ConvGroups
	headKind := prune.KindHeads
	if opts.HeadDim {
		headKind = prune.KindHeadDim
	}
	for _, k := range []struct{ flag, kind string }{{"heads", headKind}, {"kv-groups", prune.KindKVGroups}, {"mlp", prune.KindMLP}, {"embed", prune.KindEmbed}} {
		if cmd.IsSet(k.flag) {
			if opts.Settings.KindRatios == nil {
				opts.Settings.KindRatios = map[string]float64{}
			}
			opts.Settings.KindRatios[k.kind] = cmd.Float(k.flag)
		}
	}
	if !cmd.IsSet("criterion") && opts.Criteria.Calib == "" {
		opts.defaultWithoutCalib(cmd.IsSet("allocate"))
	}
	if !cmd.IsSet("criterion") && opts.Criteria.Calib != "" {
		chosen := cmd.IsSet("allocate") || cmd.IsSet("steps") || cmd.IsSet("prune-embed") || cmd.IsSet("head-dim") || len(opts.Settings.KindRatios) > 0
		opts.defaultWithCalib(cmd.IsSet("allocate"), cmd.IsSet("prune-embed"), chosen)
	}
	if opts.Settings.RoundSoft {
		// The default rounds narrow groups to 8 (prune.DefaultRoundNarrow).
		opts.Settings.RoundNarrow = prune.DefaultRoundNarrow
	}
	return opts
}

// defaultWithCalib picks the data-aware path when calibration data is
// given without a criterion: OBS scores and compensation with
// least-squares reconstruction. Structured pruning only; replayed plans
// keep what they recorded.
//
// When nothing else names the path (no --allocate, --steps, kind
// ratios, --prune-embed or --head-dim; a params, MACs or channels
// target) the allocation, steps and group kinds are searched
// (pruner.RunSearch): no fixed combination is within half a point of
// the best on every trained model (docs/RESULTS.md, "Default against
// best"). Otherwise sensitivity allocation is taken where --ratio alone
// shares the removal, with the embedding (residual) width of
// transformers offered unless --prune-embed is given.
func (o *pruneOptions) defaultWithCalib(allocateSet, embedSet, chosen bool) {
	if o.Unstructured || o.NM != "" || o.PlanIn != "" {
		return
	}
	o.Settings.Criterion = "obs"
	o.Criteria.Reconstruct = true
	if !chosen && o.Settings.Target != "latency" {
		o.Search = true
		o.DataDefault = "obs + reconstruct, the allocation, steps and group kinds searched on held-out calibration samples (--allocate or --steps to choose)"
		return
	}
	path := "obs + reconstruct"
	if !allocateSet && len(o.Settings.KindRatios) == 0 {
		o.Criteria.Allocate = "sensitivity"
		path = "obs + sensitivity allocation + reconstruct"
		if !embedSet {
			o.Settings.PruneEmbed = true
			path = "obs + sensitivity allocation (embedding width included) + reconstruct"
		}
	}
	o.DataDefault = path
}

// defaultWithoutCalib chooses OBS with sensitivity allocation on
// synthesized inputs for structured pruning given no data and no
// criterion (prune_synth.go), except where a choice made needs real
// data or has its own path: a plan, --data-free, the latency target,
// steps, fits and recovery.
func (o *pruneOptions) defaultWithoutCalib(allocateSet bool) {
	c := o.Criteria
	if o.Unstructured || o.NM != "" || o.PlanIn != "" || o.Settings.Target == "latency" || allocateSet || o.Steps > 1 ||
		c.DataFree || c.Reconstruct || c.ReconstructBlocks || c.RecalibrateBN || c.FitBlocks > 0 || c.RecoverKD > 0 {
		return
	}
	o.Settings.Criterion, o.SynthCalib = "obs", true
	if len(o.Settings.KindRatios) == 0 {
		// Kind ratios (--heads, --mlp, ...) ask for their own shares.
		o.Criteria.Allocate = "sensitivity"
	}
}

// requireKinds refuses a --heads, --mlp or --embed ratio for a kind of
// group the model has nothing prunable of, instead of writing an
// unchanged copy as if it had pruned.
func requireKinds(groups []*prune.Group, ratios map[string]float64) error {
	for _, kind := range slices.Sorted(maps.Keys(ratios)) {
		if ratios[kind] <= 0 {
			continue
		}
		frozen, reason, prunable := 0, "", false
		for _, g := range groups {
			if g.Kind != kind {
				continue
			}
			if !g.Frozen {
				prunable = true
				break
			}
			if frozen++; reason == "" {
				reason = g.Reason
			}
		}
		switch {
		case prunable:
		case frozen == 0:
			return usageErrorf("prune: %s ratio %v: the model has no prunable %s groups (pare inspect --groups lists the frozen ones and why)", kind, ratios[kind], kind)
		default:
			return usageErrorf("prune: %s ratio %v: all %d %s groups are frozen (first: %s)", kind, ratios[kind], frozen, kind, reason)
		}
	}
	return nil
}

// printSearch lists the default search's candidates with their held-out
// scores, the picked one marked.
func printSearch(w io.Writer, s *pruner.Search) error {
	if s == nil || s.HeldOut == 0 {
		return nil
	}
	fitted := slices.ContainsFunc(s.Candidates, func(c pruner.Tried) bool { return c.Fitted != nil })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "\nsearch candidate\tremoved\theld-out KL\trel. MSE\ttop-1 agreement\t"
	if fitted {
		head += "after the block fit: KL\trel. MSE\t"
	}
	fmt.Fprintln(tw, head)
	for i, c := range s.Candidates {
		mark := ""
		if i == s.Picked {
			mark = "picked"
		}
		if c.Err != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tfailed: %s\n", c.Name, c.Err)
			continue
		}
		after := ""
		switch {
		case c.Fitted != nil:
			after = fmt.Sprintf("%.4g\t%.4g\t", c.Fitted.KL, c.Fitted.RelMSE)
		case fitted:
			after = "\t\t"
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.4g\t%.4g\t%.1f%%\t%s%s\n", c.Name, 100*c.Removed, c.Score.KL, c.Score.RelMSE, 100*c.Score.Agreement, after, mark)
	}
	return tw.Flush()
}
