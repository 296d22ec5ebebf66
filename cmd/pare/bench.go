package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
)

// benchOptions are pare bench's settings.
type benchOptions struct {
	Models      []string
	InputShapes map[string][]int64
	Batches     []int64
	Threads     int
	Warmup      int
	Runs        int
	Seed        uint64
	OrtLib      string
	JSON        bool
}

// benchReport is pare bench's JSON output (docs/CLI.md, section bench).
type benchReport struct {
	Onnxruntime string       `json:"onnxruntime"`
	Threads     int          `json:"threads"`
	Warmup      int          `json:"warmup"`
	Runs        int          `json:"runs"`
	Batches     []int64      `json:"batches"`
	Models      []benchModel `json:"models"`
}

// benchModel is one model's static figures and timings, with ratios to
// the first model.
type benchModel struct {
	Path        string        `json:"path"`
	SizeBytes   int64         `json:"size_bytes"`
	Params      *int64        `json:"params"`
	MACs        *int64        `json:"macs"`
	CountError  string        `json:"count_error,omitempty"`
	SizeRatio   float64       `json:"size_ratio"`
	ParamsRatio *float64      `json:"params_ratio"`
	MACsRatio   *float64      `json:"macs_ratio"`
	Timings     []benchTiming `json:"timings"`
}

// benchTiming is one batch size's latency.
type benchTiming struct {
	Batch         int64    `json:"batch"`
	Skipped       string   `json:"skipped,omitempty"`
	MedianNs      int64    `json:"median_ns,omitempty"`
	P90Ns         int64    `json:"p90_ns,omitempty"`
	MeanNs        int64    `json:"mean_ns,omitempty"`
	MinNs         int64    `json:"min_ns,omitempty"`
	MaxNs         int64    `json:"max_ns,omitempty"`
	SamplesPerSec float64  `json:"samples_per_s,omitempty"`
	LatencyRatio  *float64 `json:"latency_ratio"`
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure latency, throughput, size, params and MACs of models side by side",
		// Flag parse errors are usage errors (exit 2) here too.
		OnUsageError: onUsageError,
		ArgsUsage:    "MODEL...",
		Description: "Runs each model in onnxruntime on synthetic inputs (the same seed for every model):\n" +
			"warm-up runs, then timed runs, one run of each model in turn; reports median and p90\n" +
			"latency and samples/s per batch size, with ratios to the first model. MACs count\n" +
			"symbolic dims as 1 (batch 1).",
		Flags: []cli.Flag{
			inputShapeFlag("of the synthetic inputs (the batch axis follows --batch)"),
			&cli.StringFlag{Name: "batch", Value: "1", Usage: "comma-separated batch sizes, e.g. 1,32"},
			&cli.IntFlag{Name: "threads", Value: 1, Usage: "onnxruntime intra-op threads"},
			&cli.IntFlag{Name: "warmup", Value: 10, Usage: "untimed runs first"},
			&cli.IntFlag{Name: "runs", Value: 100, Usage: "timed runs"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed for synthetic inputs"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			opts, err := benchOptionsFrom(cmd)
			if err != nil {
				return err
			}
			rep, err := runBench(ctx, opts)
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(cmd.Root().Writer, rep)
			}
			return printBenchText(cmd.Root().Writer, rep)
		},
	}
}

func benchOptionsFrom(cmd *cli.Command) (benchOptions, error) {
	o := benchOptions{
		Models: cmd.Args().Slice(), Threads: cmd.Int("threads"), Warmup: cmd.Int("warmup"), Runs: cmd.Int("runs"),
		Seed: cmd.Uint64("seed"), OrtLib: cmd.String("ort-lib"), JSON: cmd.Bool("json"),
	}
	if len(o.Models) == 0 {
		return o, usageErrorf("bench takes one or more MODEL arguments")
	}
	var err error
	if o.InputShapes, err = inputShapes(cmd.String("input-shape")); err != nil {
		return o, err
	}
	for _, s := range strings.Split(cmd.String("batch"), ",") {
		b, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || b <= 0 {
			return o, usageErrorf("--batch wants positive integers separated by commas, got %q", cmd.String("batch"))
		}
		if err := checkBatch(b); err != nil {
			return o, err
		}
		o.Batches = append(o.Batches, b)
	}
	if err := checkThreads(o.Threads); err != nil {
		return o, err
	}
	switch {
	case o.Warmup < 0:
		return o, usageErrorf("--warmup must be 0 or more, got %d", o.Warmup)
	case o.Runs < 1:
		return o, usageErrorf("--runs must be at least 1, got %d", o.Runs)
	case o.Runs > maxRuns || o.Warmup > maxRuns-o.Runs:
		return o, usageErrorf("--warmup plus --runs is over the limit of %d", maxRuns)
	}
	return o, nil
}

func runBench(ctx context.Context, o benchOptions) (*benchReport, error) {
	if err := ort.Init(o.OrtLib); err != nil {
		return nil, err
	}
	rep := &benchReport{Onnxruntime: ort.Version(), Threads: o.Threads, Warmup: o.Warmup, Runs: o.Runs, Batches: o.Batches}
	sessions := make([]*ort.Session, len(o.Models))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, path := range o.Models {
		s, _, err := loadSession(path, ort.Options{Threads: o.Threads})
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		sessions[i] = s
		m, err := benchStatic(path, keptShapes(s, o.InputShapes))
		if err != nil {
			return nil, err
		}
		rep.Models = append(rep.Models, m)
	}
	for _, b := range o.Batches {
		timings, err := timeBatch(ctx, sessions, o, b)
		if err != nil {
			return nil, err
		}
		for i := range rep.Models {
			rep.Models[i].Timings = append(rep.Models[i].Timings, timings[i])
		}
	}
	addRatios(rep.Models)
	return rep, nil
}

// benchStatic measures what needs no running: size on disk, and params
// and MACs from the graph package. A model it cannot count is still
// timed.
func benchStatic(path string, shapes map[string][]int64) (benchModel, error) {
	f, err := graph.MeasureFileWith(path, shapes)
	if err != nil {
		return benchModel{}, fmt.Errorf("bench: %w", err)
	}
	return benchModel{Path: path, SizeBytes: f.SizeBytes, Params: f.Params, MACs: f.MACs, CountError: f.CountError}, nil
}

// timeBatch times every model at batch size b. Runs are interleaved
// (one run of each model in turn) so that drift in machine load falls on
// all models alike and their ratios stay meaningful.
func timeBatch(ctx context.Context, sessions []*ort.Session, o benchOptions, b int64) ([]benchTiming, error) {
	out := make([]benchTiming, len(sessions))
	timers := make([]*ort.Timer, len(sessions))
	defer func() {
		for _, t := range timers {
			if t != nil {
				t.Close()
			}
		}
	}()
	for i, s := range sessions {
		out[i].Batch = b
		if reason := batchMismatch(s.Inputs(), b); reason != "" {
			out[i].Skipped = reason
			continue
		}
		in, err := check.Synthesize(s.Inputs(), check.SynthOptions{Samples: b, Seed: o.Seed, Shapes: keptShapes(s, o.InputShapes)})
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.Name(), err)
		}
		if timers[i], err = s.NewTimer(in); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	w, progress := terminal(os.Stderr)
	times := make([][]time.Duration, len(sessions))
	for r := range o.Warmup + o.Runs {
		if progress && r%10 == 0 {
			fmt.Fprintf(w, "\rbench: batch %d, run %d/%d\033[K", b, r, o.Warmup+o.Runs)
		}
		for i, t := range timers {
			if t == nil {
				continue
			}
			d, err := t.Run(ctx)
			if err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			if r >= o.Warmup {
				times[i] = append(times[i], d)
			}
		}
	}
	if progress {
		fmt.Fprint(w, "\r\033[K")
	}
	for i, t := range timers {
		if t == nil {
			continue
		}
		lat := ort.Summarise(times[i], o.Threads, o.Warmup)
		out[i].MedianNs, out[i].P90Ns, out[i].MeanNs = int64(lat.Median), int64(lat.P90), int64(lat.Mean)
		out[i].MinNs, out[i].MaxNs = int64(lat.Min), int64(lat.Max)
		if lat.Median > 0 {
			out[i].SamplesPerSec = float64(b) / lat.Median.Seconds()
		}
	}
	return out, nil
}

// batchMismatch says why batch b cannot be fed, or "".
func batchMismatch(inputs []ort.ValueInfo, b int64) string {
	for _, in := range inputs {
		if len(in.Dims) > 0 && in.Dims[0] > 0 && in.Dims[0] != b {
			return fmt.Sprintf("input %q has a static batch of %d", in.Name, in.Dims[0])
		}
	}
	return ""
}

// addRatios divides each model's figures by the first model's.
func addRatios(ms []benchModel) {
	if len(ms) == 0 {
		return
	}
	first := ms[0]
	for i := range ms {
		m := &ms[i]
		if first.SizeBytes > 0 {
			m.SizeRatio = float64(m.SizeBytes) / float64(first.SizeBytes)
		}
		m.ParamsRatio = ratio(m.Params, first.Params)
		m.MACsRatio = ratio(m.MACs, first.MACs)
		for j := range m.Timings {
			t, f := m.Timings[j], first.Timings[j]
			if t.Skipped == "" && f.Skipped == "" && f.MedianNs > 0 {
				m.Timings[j].LatencyRatio = new(float64(t.MedianNs) / float64(f.MedianNs))
			}
		}
	}
}

func ratio(a, b *int64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	return new(float64(*a) / float64(*b))
}

func printBenchText(w io.Writer, rep *benchReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tsize\tparams\tMACs(b=1)\tbatch\tmedian\tp90\tsamples/s\tlatency×\tsize×\tparams×\tMACs×\t")
	for _, m := range rep.Models {
		for i, t := range m.Timings {
			model, size, params, macs, sr, pr, mr := "", "", "", "", "", "", ""
			if i == 0 {
				model, size = m.Path, humanBytes(m.SizeBytes)
				params, macs = humanCount(m.Params), humanCount(m.MACs)
				sr, pr, mr = fmtRatio(&m.SizeRatio), fmtRatio(m.ParamsRatio), fmtRatio(m.MACsRatio)
			}
			if t.Skipped != "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\tskipped: %s\t\t\t\t%s\t%s\t%s\t\n", model, size, params, macs, t.Batch, t.Skipped, sr, pr, mr)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t\n", model, size, params, macs, t.Batch,
				time.Duration(t.MedianNs).Round(time.Microsecond), time.Duration(t.P90Ns).Round(time.Microsecond),
				t.SamplesPerSec, fmtRatio(t.LatencyRatio), sr, pr, mr)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nonnxruntime %s, %d thread(s), %d warm-up + %d timed runs per batch; ratios are to the first model\n",
		rep.Onnxruntime, rep.Threads, rep.Warmup, rep.Runs)
	for _, m := range rep.Models {
		if m.CountError != "" {
			fmt.Fprintf(w, "%s: params/MACs: %s\n", m.Path, m.CountError)
		}
	}
	return nil
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *r)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

func humanCount(n *int64) string {
	if n == nil {
		return "-"
	}
	f := float64(*n)
	for _, u := range []struct {
		div float64
		s   string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
		if f >= u.div {
			return fmt.Sprintf("%.2f%s", f/u.div, u.s)
		}
	}
	return strconv.FormatInt(*n, 10)
}

// keptShapes maps sizes given for the original model to a pruned model
// whose cache lost heads (ioslice), so that one --input-shape serves
// both.
func keptShapes(s *ort.Session, shapes map[string][]int64) map[string][]int64 {
	if len(shapes) == 0 {
		return shapes
	}
	out := make(map[string][]int64, len(shapes))
	for name, sh := range shapes {
		out[name] = s.Kept().Shape(name, sh)
	}
	return out
}
