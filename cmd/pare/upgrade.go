package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/upgrade"
)

// upgradeResult is what pare upgrade reports.
type upgradeResult struct {
	Model  string `json:"model"`
	Output string `json:"output"`
	*upgrade.Report
}

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:      "upgrade",
		Usage:     "raise a model's default-domain opset, rewriting the ops whose signature changed",
		ArgsUsage: "MODEL",
		Description: fmt.Sprintf("Converts opsets %d to %d (ai.onnx domain). A node that cannot be carried over\n"+
			"exactly is refused with its name (exit 3) and nothing is written; a model already at\n"+
			"--opset or above is refused too (exit 3), since there is nothing to change.", upgrade.Oldest, upgrade.Newest),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "upgraded model path (required)"},
			&cli.IntFlag{Name: "opset", Value: 13, Usage: fmt.Sprintf("target opset (%d–%d)", upgrade.Oldest, upgrade.Newest)},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usageErrorf("upgrade takes one MODEL argument, got %d", cmd.Args().Len())
			}
			res, err := runUpgrade(ctx, cmd.Args().First(), cmd.String("output"), int64(cmd.Int("opset")))
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(cmd.Root().Writer, res)
			}
			return printUpgradeText(cmd.Root().Writer, res)
		},
	}
}

func runUpgrade(ctx context.Context, model, out string, target int64) (*upgradeResult, error) {
	if out == "" {
		return nil, usageErrorf("upgrade: -o OUT is required")
	}
	if target < upgrade.Oldest || target > upgrade.Newest {
		return nil, usageErrorf("upgrade: --opset %d (want %d to %d)", target, upgrade.Oldest, upgrade.Newest)
	}
	if same, err := samePath(model, out); err != nil || same {
		if err != nil {
			return nil, fmt.Errorf("upgrade: %w", err)
		}
		return nil, usageErrorf("upgrade: output %s is the input model", out)
	}
	m, err := graph.Load(model)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	rep, err := upgrade.To(m, target)
	if err != nil {
		return nil, err
	}
	if !rep.Changed() {
		return nil, fmt.Errorf("upgrade: %w: %s is at opset %d already (asked for %d): nothing to change, nothing written",
			graph.ErrUnsupported, model, rep.From, target)
	}
	if err := graph.CheckInvariants(m); err != nil {
		return nil, fmt.Errorf("upgrade: the upgraded model is invalid, nothing written: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.Save(out, graph.SaveOptions{}); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	return &upgradeResult{Model: model, Output: out, Report: rep}, nil
}

func printUpgradeText(w io.Writer, res *upgradeResult) error {
	fmt.Fprintf(w, "%s: %s\n", res.Output, res.Report)
	ops := make([]string, 0, len(res.Rewritten))
	for op := range res.Rewritten {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		fmt.Fprintf(w, "  %-20s %d\n", op, res.Rewritten[op])
	}
	return nil
}
