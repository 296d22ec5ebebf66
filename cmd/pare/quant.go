package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/quant"
)

// quantOptions are pare quant's settings.
type quantOptions struct {
	Model, Out    string
	Format        string
	Bits, Block   int
	Asym          bool
	PerChannel    bool
	Method        string
	Rotate        string
	Calib         string
	CalibSamples  int
	Calibrate     string
	Exclude       string
	AccuracyLevel int
	ActOrder      bool
	Sequential    bool
	Conv          bool
	Seed          uint64
	OrtLib        string
	JSON          bool
	NoVerify      bool
	Logf          func(format string, args ...any)
}

// quantResult is what pare quant reports.
type quantResult struct {
	Model      string `json:"model"`
	Output     string `json:"output"`
	SizeBefore int64  `json:"size_before_bytes"`
	SizeAfter  int64  `json:"size_after_bytes"`
	// Verify says whether onnxruntime ran the result before it was
	// written ("ok") or why not.
	Verify string `json:"verify"`
	*quant.Report
}

func quantCommand() *cli.Command {
	return &cli.Command{
		Name:      "quant",
		Usage:     "quantize weights (and activations) into a format onnxruntime runs",
		ArgsUsage: "MODEL",
		Description: "Formats: qdq (static int8, calibrated), dynamic (int8 MatMulInteger), nbits\n" +
			"(com.microsoft MatMulNBits, 4/8-bit weight-only), qdq4 (opset-21 INT4 blocked).\n" +
			"Methods: rtn, gptq, rsq (GPTQ with attention-weighted tokens). docs/QUANT.md has the detail.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "quantized model path (required)"},
			&cli.StringFlag{Name: "format", Value: quant.FormatQDQ, Usage: "qdq|dynamic|nbits|qdq4"},
			&cli.IntFlag{Name: "bits", Usage: "weight bits: 8 or 4 (default 8, 4 for qdq4)"},
			&cli.IntFlag{Name: "block", Value: 32, Usage: "block size along K for nbits/qdq4 (16–256)"},
			&cli.BoolFlag{Name: "sym", Usage: "symmetric weights (the default)"},
			&cli.BoolFlag{Name: "asym", Usage: "asymmetric weights with zero points (nbits, qdq4)"},
			&cli.BoolFlag{Name: "per-channel", Value: true, Usage: "one weight scale per output channel (qdq, dynamic); --per-channel=false for per-tensor"},
			&cli.StringFlag{Name: "method", Value: quant.MethodRTN, Usage: "rtn|gptq|rsq"},
			&cli.StringFlag{Name: "rotate", Value: quant.RotateNone, Usage: "none|hadamard|fused (fused into the weights where the graph allows, online elsewhere)"},
			&cli.StringFlag{Name: "calib", Usage: "calibration inputs (.npy for one input, .npz by input name); default synthetic"},
			&cli.IntFlag{Name: "calib-samples", Value: 64, Usage: "calibration samples to use"},
			&cli.StringFlag{Name: "calibrate", Value: quant.CalibMinMax, Usage: "activation ranges: minmax|percentile"},
			&cli.StringFlag{Name: "exclude", Usage: "leave layers whose node or weight name matches this regular expression float"},
			&cli.IntFlag{Name: "accuracy-level", Usage: "MatMulNBits accuracy_level (0 float compute, 4 int8 compute)"},
			&cli.BoolFlag{Name: "act-order", Usage: "GPTQ: quantize columns by descending Hessian diagonal"},
			&cli.BoolFlag{Name: "conv", Usage: "qdq4: also 2-D Convs, 4-bit per output channel"},
			&cli.BoolFlag{Name: "sequential", Usage: "GPTQ/RSQ: collect each layer's Hessian with the earlier layers already quantized"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed for synthetic data and random rotations"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
			&cli.BoolFlag{Name: "no-verify", Usage: "write the result without running it once in onnxruntime first"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usageErrorf("quant takes one MODEL argument, got %d", cmd.Args().Len())
			}
			opts, err := quantOptionsFrom(cmd)
			if err != nil {
				return err
			}
			pctx, done := withProgressBar(ctx, opts.JSON)
			res, err := runQuant(pctx, opts)
			done()
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(cmd.Root().Writer, res)
			}
			return printQuantText(cmd.Root().Writer, res)
		},
	}
}

// needsRuntime reports whether the settings calibrate, which needs
// onnxruntime; RTN weight-only quantization does not.
func (o quantOptions) needsRuntime() bool {
	return o.Format == quant.FormatQDQ || o.Method != quant.MethodRTN
}

func runQuant(ctx context.Context, opts quantOptions) (*quantResult, error) {
	if opts.Out == "" {
		return nil, usageErrorf("quant: -o OUT is required")
	}
	if same, err := samePath(opts.Model, opts.Out); err != nil || same {
		if err != nil {
			return nil, fmt.Errorf("quant: %w", err)
		}
		return nil, usageErrorf("quant: output %s is the input model", opts.Out)
	}
	var exclude *regexp.Regexp
	if opts.Exclude != "" {
		var err error
		if exclude, err = regexp.Compile(opts.Exclude); err != nil {
			return nil, usageErrorf("quant: --exclude: %v", err)
		}
	}
	if opts.needsRuntime() && opts.OrtLib != "" {
		if err := ort.Init(opts.OrtLib); err != nil {
			return nil, err
		}
	}
	m, err := graph.Load(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	before, err := fileSize(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	qo := quant.Options{
		Format: opts.Format, Bits: opts.Bits, Block: opts.Block, Asymmetric: opts.Asym,
		PerTensor: !opts.PerChannel, Method: opts.Method, Rotate: opts.Rotate,
		CalibSamples: opts.CalibSamples, Calibrate: opts.Calibrate, Exclude: exclude,
		AccuracyLevel: opts.AccuracyLevel, ActOrder: opts.ActOrder, Sequential: opts.Sequential, QuantizeConv: opts.Conv, Seed: opts.Seed, Logf: opts.Logf,
		// The fused rotation follows the residual stream through the
		// pruning analysis' groups.
		ChannelSets: prune.ChannelSets,
	}
	calibPath := opts.Calib
	if opts.needsRuntime() {
		// A decoding step with a cache calibrates on its own decoding
		// of the token sequences given, or of random ones.
		npz, note, cleanup, err := stepCalib(ctx, "quant", m, opts.Calib, opts.CalibSamples, opts.Seed, opts.OrtLib)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		if npz != "" {
			calibPath = npz
			if opts.Logf != nil {
				opts.Logf("%s", note)
			}
		}
	}
	if calibPath != "" {
		// Calibration data that cannot be used is a usage error, named
		// as in every command (calib.ErrData).
		d, err := quant.LoadDataset(calibPath, m, opts.CalibSamples)
		if errors.Is(err, calib.ErrData) {
			return nil, err
		}
		if err != nil {
			return nil, usageErrorf("quant: --calib: %v", err)
		}
		qo.Calib = &d
	}
	rep, err := quant.Quantize(ctx, m, qo)
	if err != nil {
		return nil, err
	}
	// A quantized model that breaks an invariant is never written.
	if err := graph.CheckInvariants(m); err != nil {
		return nil, fmt.Errorf("quant: the quantized model is invalid, nothing written: %w", err)
	}
	verify, err := saveVerified(ctx, "quant", m, opts.Out, graph.SaveOptions{}, opts.Model, calibPath, opts.OrtLib, opts.NoVerify)
	if err != nil {
		return nil, err
	}
	after, err := fileSize(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	return &quantResult{Model: opts.Model, Output: opts.Out, SizeBefore: before, SizeAfter: after, Verify: verify, Report: rep}, nil
}

// samePath reports whether a and b name the same file (b may not exist).
func samePath(a, b string) (bool, error) {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb), nil
	}
	if errB != nil && !errors.Is(errB, os.ErrNotExist) {
		return false, errB
	}
	pa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	pb, err := filepath.Abs(b)
	return pa == pb, err
}

// fileSize returns the size of a model file plus its external data files
// next to it (those named <file>.data, as pare writes them).
func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	n := st.Size()
	if ds, err := os.Stat(path + ".data"); err == nil {
		n += ds.Size()
	}
	return n, nil
}

func printQuantText(w io.Writer, res *quantResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "layer\top\tbits\tgranularity\tscales\tweight err\toutput err\n")
	for _, l := range res.Layers {
		sym := "sym"
		if !l.Symmetric {
			sym = "asym"
		}
		outErr := "-"
		if l.OutputError != nil {
			outErr = fmt.Sprintf("%.4f", *l.OutputError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d %s\t%s\t%.3g…%.3g\t%.4f\t%s\n",
			l.Node, l.Op, l.Bits, sym, l.Granularity, l.ScaleMin, l.ScaleMax, l.WeightError, outErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nformat %s, method %s, rotation %s", res.Format, res.Method, res.Rotate)
	if res.Calibrate != "" {
		fmt.Fprintf(w, ", activations %s over %d samples (%d tensors)", res.Calibrate, res.Samples, res.Activation)
	}
	fmt.Fprintf(w, "\n%d layers quantized, %d left float\n", len(res.Layers), len(res.Skipped))
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  float: %s\n", s)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if res.Verify != "ok" {
		fmt.Fprintf(w, "note: onnxruntime verification %s\n", res.Verify)
	}
	fmt.Fprintf(w, "\n%-7s %12s  %s\n", "size", "bytes", "file")
	fmt.Fprintf(w, "%-7s %12d  %s\n", "before", res.SizeBefore, res.Model)
	fmt.Fprintf(w, "%-7s %12d  %s\n", "after", res.SizeAfter, res.Output)
	if res.SizeAfter > 0 {
		fmt.Fprintf(w, "%-7s %11.2f×\n", "ratio", float64(res.SizeBefore)/float64(res.SizeAfter))
	}
	return nil
}

// quantOptionsFrom reads pare quant's flags and argument; pare run reads
// recipe steps through it too.
func quantOptionsFrom(cmd *cli.Command) (quantOptions, error) {
	if cmd.Bool("sym") && cmd.Bool("asym") {
		return quantOptions{}, usageErrorf("--sym and --asym exclude each other")
	}
	opts := quantOptions{
		Model: cmd.Args().First(), Out: cmd.String("output"), Format: cmd.String("format"),
		Bits: int(cmd.Int("bits")), Block: int(cmd.Int("block")), Asym: cmd.Bool("asym"),
		PerChannel: cmd.Bool("per-channel"), Method: cmd.String("method"), Rotate: cmd.String("rotate"),
		Calib: cmd.String("calib"), CalibSamples: int(cmd.Int("calib-samples")), Calibrate: cmd.String("calibrate"),
		Exclude: cmd.String("exclude"), AccuracyLevel: int(cmd.Int("accuracy-level")), ActOrder: cmd.Bool("act-order"),
		Sequential: cmd.Bool("sequential"), Conv: cmd.Bool("conv"),
		Seed: cmd.Uint64("seed"), OrtLib: cmd.Root().String("ort-lib"), JSON: cmd.Bool("json"),
		NoVerify: cmd.Bool("no-verify"),
		Logf:     func(format string, args ...any) { fmt.Fprintf(cmd.Root().ErrWriter, "pare: "+format+"\n", args...) },
	}
	if opts.CalibSamples < 1 {
		return opts, usageErrorf("--calib-samples must be at least 1, got %d", opts.CalibSamples)
	}
	if opts.CalibSamples > maxSamples {
		return opts, usageErrorf("--calib-samples %d is over the limit of %d", opts.CalibSamples, maxSamples)
	}
	return opts, nil
}
