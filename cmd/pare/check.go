package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/pipeline"
)

// checkOptions are pare check's settings.
type checkOptions struct {
	Ref, Cand       string
	Inputs, Labels  string
	Samples         int64
	InputShapes     map[string][]int64
	Seed            uint64
	Batch           int64
	IntLow, IntHigh int64
	Threads         int
	Thresholds      check.Thresholds
	Perplexity      bool
	OrtLib          string
	JSON            bool
}

// checkReport is pare check's JSON output (docs/CLI.md, section check).
type checkReport struct {
	*check.Result
	Onnxruntime string `json:"onnxruntime"`
	Threads     int    `json:"threads"`
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "compare a candidate model's outputs with a reference model's",
		// Flag parse errors are usage errors (exit 2) here too.
		OnUsageError: onUsageError,
		ArgsUsage:    "REF CAND",
		Description: "Runs both models in onnxruntime on the same inputs and compares every output.\n" +
			"Without threshold flags the gate is allclose with atol 1e-4, rtol 1e-3; any threshold\n" +
			"flag, or --metric ppl, replaces that default (giving only --atol or --rtol leaves the other at 0).\n" +
			"Exit 1 when a threshold fails.",
		Flags: []cli.Flag{
			inputShapeFlag("of synthetic inputs (the batch axis follows --samples)"),
			&cli.StringFlag{Name: "inputs", Usage: "inputs: .npy (a single-input model) or .npz (one array per input name); default synthetic"},
			&cli.StringFlag{Name: "labels", Usage: "integer class labels (.npy, shape [N]) for accuracy"},
			&cli.Int64Flag{Name: "samples", Value: check.DefaultSamples, Usage: "synthetic samples (batch axis of symbolic or size-1 inputs)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed for synthetic inputs"},
			&cli.Int64Flag{Name: "batch", Usage: "rows per run (default: the model's static batch, else 32)"},
			&cli.StringFlag{Name: "int-range", Value: "0,2", Usage: "LO,HI: synthetic integer inputs are drawn from [LO, HI)"},
			&cli.Float64Flag{Name: "atol", Usage: "allclose absolute tolerance"},
			&cli.Float64Flag{Name: "rtol", Usage: "allclose tolerance relative to |reference|"},
			&cli.Float64Flag{Name: "min-cos", Usage: "lowest cosine similarity per output"},
			&cli.Float64Flag{Name: "min-top1", Usage: "lowest top-1 agreement per output, 0..1"},
			&cli.Float64Flag{Name: "max-acc-drop", Usage: "largest accuracy drop in percentage points (needs --labels)"},
			&cli.StringFlag{Name: "metric", Usage: "ppl: also score causal LMs by next-token perplexity and top-1 on the integer token input"},
			&cli.Float64Flag{Name: "max-ppl-increase", Usage: "largest next-token perplexity increase, in percent of the reference's (implies --metric ppl)"},
			&cli.IntFlag{Name: "threads", Value: 1, Usage: "onnxruntime intra-op threads per model"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			opts, err := checkOptionsFrom(cmd)
			if err != nil {
				return err
			}
			rep, err := runCheck(ctx, opts)
			if rep != nil {
				var perr error
				if opts.JSON {
					perr = printJSON(cmd.Root().Writer, rep)
				} else {
					perr = printCheckText(cmd.Root().Writer, rep)
				}
				if err == nil {
					err = perr
				}
			}
			return err
		},
	}
}

// checkOptionsFrom reads and validates flags and arguments.
func checkOptionsFrom(cmd *cli.Command) (checkOptions, error) {
	if cmd.Args().Len() != 2 {
		return checkOptions{}, usageErrorf("check takes REF and CAND model arguments, got %d", cmd.Args().Len())
	}
	o := checkOptions{
		Ref: cmd.Args().Get(0), Cand: cmd.Args().Get(1),
		Inputs: cmd.String("inputs"), Labels: cmd.String("labels"),
		Samples: cmd.Int64("samples"), Seed: cmd.Uint64("seed"), Batch: cmd.Int64("batch"),
		Threads: cmd.Int("threads"), OrtLib: cmd.String("ort-lib"), JSON: cmd.Bool("json"),
	}
	if o.Samples <= 0 {
		return o, usageErrorf("--samples must be positive, got %d", o.Samples)
	}
	var err error
	if o.InputShapes, err = inputShapes(cmd.String("input-shape")); err != nil {
		return o, err
	}
	if o.Samples > maxSamples {
		return o, usageErrorf("--samples %d is over the limit of %d", o.Samples, maxSamples)
	}
	if o.Batch < 0 {
		return o, usageErrorf("--batch must be positive, got %d", o.Batch)
	}
	if err := checkBatch(o.Batch); err != nil {
		return o, err
	}
	if err := checkThreads(o.Threads); err != nil {
		return o, err
	}
	lo, hi, ok := parseRange(cmd.String("int-range"))
	if !ok {
		return o, usageErrorf("--int-range wants LO,HI with LO < HI, got %q", cmd.String("int-range"))
	}
	o.IntLow, o.IntHigh = lo, hi
	th := check.Thresholds{}
	if cmd.IsSet("atol") || cmd.IsSet("rtol") {
		th.AllClose = &check.AllClose{ATol: cmd.Float64("atol"), RTol: cmd.Float64("rtol")}
	}
	for name, dst := range map[string]**float64{"min-cos": &th.MinCos, "min-top1": &th.MinTop1, "max-acc-drop": &th.MaxAccDrop, "max-ppl-increase": &th.MaxPPLIncrease} {
		if cmd.IsSet(name) {
			*dst = new(cmd.Float64(name))
		}
	}
	// Perplexity is a measurement of its own: asked for alone, it
	// replaces the default allclose gate (a pruned LM never passes it).
	if th == (check.Thresholds{}) && cmd.String("metric") == "" {
		th = check.DefaultThresholds()
	}
	if err := th.Validate(); err != nil {
		return o, usageErrorf("%v", strings.TrimPrefix(err.Error(), "check: "))
	}
	if th.MaxAccDrop != nil && o.Labels == "" {
		return o, usageErrorf("--max-acc-drop needs --labels")
	}
	o.Thresholds = th
	switch m := cmd.String("metric"); m {
	case "ppl":
		o.Perplexity = true
	case "":
		o.Perplexity = th.MaxPPLIncrease != nil
	default:
		return o, usageErrorf("--metric %q: the only metric is ppl", m)
	}
	if o.Inputs != "" {
		if ext := strings.ToLower(filepath.Ext(o.Inputs)); ext != ".npy" && ext != ".npz" {
			return o, usageErrorf("--inputs %s: want a .npy or .npz file", o.Inputs)
		}
	}
	if o.Labels != "" {
		if err := pipeline.Readable(o.Labels); err != nil {
			return o, usageErrorf("--labels: %v", err)
		}
	}
	return o, nil
}

func parseRange(s string) (lo, hi int64, ok bool) {
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	return lo, hi, err1 == nil && err2 == nil && lo < hi
}

// runCheck loads both models, builds the inputs and compares. The report
// comes back with check.ErrFailed too, so that it can be printed.
func runCheck(ctx context.Context, o checkOptions) (*checkReport, error) {
	if err := ort.Init(o.OrtLib); err != nil {
		return nil, err
	}
	opts := ort.Options{Threads: o.Threads}
	ref, refModel, err := loadSession(o.Ref, opts)
	if err != nil {
		return nil, fmt.Errorf("check: reference: %w", err)
	}
	defer ref.Close()
	// Token ids' embedding rows, read now: the graph is not kept (a
	// multi-GiB model's weights would stay in memory through the run).
	vocab := calib.TokenVocab(refModel, ref.Inputs())
	cand, _, err := loadSession(o.Cand, opts)
	if err != nil {
		return nil, fmt.Errorf("check: candidate: %w", err)
	}
	defer cand.Close()

	var src check.Source
	copts := check.Options{Batch: o.Batch, Thresholds: o.Thresholds, Perplexity: o.Perplexity}
	dec, decErr := check.NewDecoder(ref)
	if decErr == nil {
		dec.LimitVocab(vocab[dec.IDs])
	}
	switch {
	case o.Inputs != "" && decErr == nil && strings.EqualFold(filepath.Ext(o.Inputs), ".npy"):
		// Token sequences for a decoding step with a key/value cache:
		// decoded one position at a time.
		src, err = dec.Source(o.Inputs)
		copts.Decode = true
	case o.Inputs != "":
		src, err = check.FromFile(o.Inputs, ref.Inputs())
	case decErr == nil && len(o.InputShapes) == 0:
		// A decoding step cannot run on inputs drawn one by one (the
		// mask's length must be the cache's plus one): random token
		// sequences are decoded instead.
		samples := o.Samples
		if samples == 0 {
			samples = check.DefaultSamples
		}
		src, err = dec.SyntheticSource(samples, check.DefaultDim, o.Seed)
		copts.Decode = true
	default:
		in, serr := check.Synthesize(ref.Inputs(), check.SynthOptions{
			Samples: o.Samples, Seed: o.Seed, IntLow: o.IntLow, IntHigh: o.IntHigh, Shapes: o.InputShapes,
		})
		if serr != nil {
			return nil, serr
		}
		src, err = check.FromArrays(in, fmt.Sprintf("synthetic (seed %d)", o.Seed))
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if o.Inputs != "" {
		// Ids past the embedding table are the file's fault: said so,
		// naming the file and sample, before onnxruntime's Gather fails.
		src = check.WithTokenIDsChecked(src, o.Inputs, vocab)
	}
	if o.Labels != "" {
		if copts.Labels, err = check.LoadLabels(o.Labels); err != nil {
			return nil, err
		}
	}
	var finish func()
	copts.Progress, finish = rowProgress("check")
	res, err := check.Compare(ctx, ref, cand, src, copts)
	finish()
	if err != nil && o.Inputs == "" && check.ReferenceFailed(err) {
		// Free sizes drawn alike may not fit together (a key/value
		// cache's past length and its mask's).
		if len(o.InputShapes) > 0 {
			err = fmt.Errorf("%w (on synthetic inputs at the --input-shape sizes: give --inputs data, or sizes that fit together)", err)
		} else {
			err = fmt.Errorf("%w (on synthetic inputs, every free size %d: give --inputs data, or --input-shape sizes that fit together)", err, check.DefaultDim)
		}
	}
	if res == nil {
		return nil, err
	}
	return &checkReport{Result: res, Onnxruntime: ort.Version(), Threads: o.Threads}, err
}

func printCheckText(w io.Writer, rep *checkReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "reference\t%s\n", rep.Reference)
	fmt.Fprintf(tw, "candidate\t%s\n", rep.Candidate)
	fmt.Fprintf(tw, "inputs\t%s, %d samples, batch %d\n", rep.Inputs, rep.Samples, rep.Batch)
	fmt.Fprintf(tw, "runtime\tonnxruntime %s, %d thread(s)\n\n", rep.Onnxruntime, rep.Threads)
	fmt.Fprintln(tw, "output\tdtype\tshape\tmax_abs\tmean_abs\trel_l2\tcosine\ttop1")
	for _, o := range rep.Outputs {
		top1 := "-"
		if o.Top1 != nil {
			top1 = fmt.Sprintf("%.4f", float64(*o.Top1))
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\n", o.Name, o.DType, o.Shape,
			num(o.MaxAbs), num(o.MeanAbs), num(o.RelL2), fmt.Sprintf("%.6f", float64(o.Cosine)), top1)
	}
	if a := rep.Accuracy; a != nil {
		fmt.Fprintf(tw, "\naccuracy\t%s, %d labels: reference %.2f%%, candidate %.2f%%, drop %.2f points\n",
			a.Output, a.Labels, 100*float64(a.Ref), 100*float64(a.Cand), float64(a.DropPoints))
	}
	if p := rep.Perplexity; p != nil {
		fmt.Fprintf(tw, "\nperplexity\t%s from %s, %d next tokens: reference %.4g, candidate %.4g (%+.2f%%)\n",
			p.Output, p.Input, p.Tokens, float64(p.Ref), float64(p.Cand), float64(p.IncreasePct))
		fmt.Fprintf(tw, "next-token top-1\treference %.2f%%, candidate %.2f%%\n", 100*float64(p.RefTop1), 100*float64(p.CandTop1))
	}
	fmt.Fprintln(tw, "\ngate\toutput\tresult\tdetail")
	for _, g := range rep.Gates {
		result := "pass"
		if !g.Pass {
			result = "FAIL"
		}
		out := g.Output
		if out == "" {
			out = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Gate, out, result, g.Detail)
	}
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(tw, "\nverdict\t%s\n", verdict)
	return tw.Flush()
}

// num formats a metric compactly (NaN and Inf spelled out).
func num(n check.Number) string {
	return strconv.FormatFloat(float64(n), 'g', 4, 64)
}

// rowProgress returns a callback that shows "label: done/total rows" on
// stderr, once the work has taken more than a second, and only when
// stderr is a terminal. done returns a func that clears the line.
func rowProgress(label string) (update func(done, total int64), finish func()) {
	w, ok := terminal(os.Stderr)
	if !ok {
		return nil, func() {}
	}
	start, shown := time.Now(), false
	update = func(done, total int64) {
		if time.Since(start) < time.Second {
			return
		}
		shown = true
		fmt.Fprintf(w, "\r%s: %d/%d rows", label, done, total)
	}
	finish = func() {
		if shown {
			fmt.Fprint(w, "\r\033[K")
		}
	}
	return update, finish
}

// terminal reports whether f is a character device (a terminal).
func terminal(f *os.File) (io.Writer, bool) {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil, false
	}
	return f, true
}
