package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/graph"
)

// inspectOptions are pare inspect's settings.
type inspectOptions struct {
	Path   string
	JSON   bool
	Nodes  bool
	Groups bool
	// InputShapes fixes input sizes for shapes and MACs.
	InputShapes map[string][]int64
}

// inspectResult is what pare inspect reports; docs/CLI.md lists the JSON
// fields.
type inspectResult struct {
	Path string `json:"path"`
	*graph.Summary
	SizeBytes int64 `json:"size_bytes"`
	graph.DiskUsage
	NodeList []graph.NodeSummary `json:"nodes,omitempty"`
	// Groups holds the coupled channel groups when --groups is given;
	// KVGroups the groups of the --kv-groups analysis, for models with
	// grouped-query attention.
	Groups   any `json:"groups,omitempty"`
	KVGroups any `json:"kv_groups,omitempty"`
}

// inspectGroups computes the coupled channel groups for --groups (and
// the KV-group analysis, nil when there are no KV groups);
// inspectGroupsText prints them as a table. The pruning code sets both
// (from a file of its own); while they are nil the flag is hidden and
// refused.
var (
	inspectGroups     func(ctx context.Context, m *graph.Model) (groups, kv any, err error)
	inspectGroupsText func(w io.Writer, groups, kv any) error
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "summarise a model: interface, ops, params, MACs, size",
		ArgsUsage: "MODEL",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
			&cli.BoolFlag{Name: "nodes", Usage: "list every node with its output shape, params and MACs"},
			&cli.BoolFlag{Name: "groups", Usage: "list coupled channel groups", Hidden: inspectGroups == nil},
			inputShapeFlag("for shapes and MACs"),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usageErrorf("inspect takes one MODEL argument, got %d", cmd.Args().Len())
			}
			shapes, err := inputShapes(cmd.String("input-shape"))
			if err != nil {
				return err
			}
			opts := inspectOptions{Path: cmd.Args().First(), JSON: cmd.Bool("json"),
				Nodes: cmd.Bool("nodes"), Groups: cmd.Bool("groups"), InputShapes: shapes}
			res, err := runInspect(ctx, opts)
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(cmd.Root().Writer, res)
			}
			return printInspectText(cmd.Root().Writer, res)
		},
	}
}

func runInspect(ctx context.Context, opts inspectOptions) (*inspectResult, error) {
	if opts.Groups && inspectGroups == nil {
		return nil, usageErrorf("--groups is not available in this build")
	}
	m, err := graph.Load(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if err := fixInputShapes(m, opts.InputShapes); err != nil {
		return nil, err
	}
	sum, err := graph.Summarize(m)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", opts.Path, err)
	}
	disk, err := graph.DiskUsageOf(m, opts.Path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	res := &inspectResult{Path: opts.Path, Summary: sum, SizeBytes: disk.Total(), DiskUsage: disk}
	if opts.Nodes {
		res.NodeList = sum.Nodes
	}
	if opts.Groups {
		if res.Groups, res.KVGroups, err = inspectGroups(ctx, m); err != nil {
			return nil, fmt.Errorf("inspect: groups: %w", err)
		}
	}
	return res, nil
}

func printInspectText(w io.Writer, res *inspectResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	line("model", "%s", res.Path)
	var opsets []string
	for _, o := range res.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		opsets = append(opsets, fmt.Sprintf("%s %d", d, o.Version))
	}
	line("ir_version", "%d", res.IRVersion)
	line("opsets", "%s", strings.Join(opsets, ", "))
	line("producer", "%s", strings.TrimSpace(res.ProducerName+" "+res.ProducerVersion))
	for _, v := range res.Inputs {
		line("input", "%s  %s", v.Name, v.Display)
	}
	for _, v := range res.Outputs {
		line("output", "%s  %s", v.Name, v.Display)
	}
	var ops []string
	for _, o := range res.Ops {
		name := o.Op
		if o.Domain != "" {
			name = o.Domain + ":" + o.Op
		}
		ops = append(ops, fmt.Sprintf("%s %d", name, o.Count))
	}
	line("nodes", "%d", res.NodeCount)
	line("ops", "%s", strings.Join(ops, ", "))
	line("params", "%s (%d tensors)", thousands(res.Params), res.ParamTensors)
	macs := fmt.Sprintf("%s (batch 1: symbolic dims taken as %d)", thousands(res.MACs), res.MACsSymbolValue)
	if len(res.InputShapes) > 0 {
		macs = fmt.Sprintf("%s (input sizes fixed by --input-shape)", thousands(res.MACs))
	}
	if res.MACsUnknown != "" {
		macs = fmt.Sprintf("unknown: %s; the nodes with known shapes sum to %s", res.MACsUnknown, thousands(res.MACs))
	}
	line("MACs", "%s", macs)
	size := fmt.Sprintf("%s (model file %s", bytesText(res.SizeBytes), bytesText(res.ModelBytes))
	if len(res.ExternalFiles) > 0 {
		size += fmt.Sprintf(", external data %s in %d files", bytesText(res.ExternalBytes), len(res.ExternalFiles))
	}
	line("size", "%s)", size)
	line("initializers", "%d, %s", res.Initializers, bytesText(res.InitializerBytes))
	for _, c := range res.ShapeConflicts {
		line("shape conflict", "%s", c)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.NodeList != nil {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tname\top\toutput\tparams\tMACs\t")
		for _, n := range res.NodeList {
			out := ""
			if len(n.Outputs) > 0 {
				out = n.Outputs[0].Display
			}
			macs := thousands(n.MACs)
			if !n.Counted {
				macs = "?"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", n.Index, n.Name, n.Op, out, thousands(n.Params), macs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if res.Groups != nil {
		fmt.Fprintln(w, "\ngroups")
		return inspectGroupsText(w, res.Groups, res.KVGroups)
	}
	return nil
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesText formats a byte count with a binary unit.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
