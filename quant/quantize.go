package quant

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"sync"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/upgrade"
)

// Output formats.
const (
	FormatQDQ     = "qdq"     // static int8 QDQ with calibration
	FormatDynamic = "dynamic" // DynamicQuantizeLinear + MatMulInteger
	FormatNBits   = "nbits"   // com.microsoft MatMulNBits, weight-only
	FormatQDQ4    = "qdq4"    // DequantizeLinear-21 INT4 blocked, weight-only
)

// Weight quantization methods.
const (
	MethodRTN  = "rtn"
	MethodGPTQ = "gptq"
	MethodRSQ  = "rsq"
)

// Rotations.
const (
	RotateNone     = "none"
	RotateHadamard = "hadamard"
	// RotateFused rotates by a random Hadamard fused into the weights
	// where the graph allows it, and online elsewhere.
	RotateFused = "fused"
)

// The accepted values of Options.Format, Method, Rotate and Calibrate,
// for option checking.
var (
	Formats      = []string{FormatQDQ, FormatDynamic, FormatNBits, FormatQDQ4}
	Methods      = []string{MethodRTN, MethodGPTQ, MethodRSQ}
	Rotations    = []string{RotateNone, RotateHadamard, RotateFused}
	Calibrations = []string{CalibMinMax, CalibPercentile}
)

// Options configure Quantize. The zero value of a field means its
// default.
type Options struct {
	Format string
	// Bits is the weight width: 8 (default) or 4 (nbits, qdq4).
	Bits int
	// Block is the quantization block along the reduction axis for nbits
	// and qdq4 (default 32).
	Block int
	// Asymmetric selects unsigned codes with zero points for weights;
	// weights are symmetric by default.
	Asymmetric bool
	// PerTensor selects one weight scale per tensor for qdq and dynamic
	// instead of one per output channel.
	PerTensor bool
	Method    string
	Rotate    string
	// Calib is the calibration data; nil means synthetic data from the
	// declared input shapes (CalibSamples samples, seeded by Seed).
	Calib        *Dataset
	CalibSamples int
	// Calibrate is the activation range method of qdq: minmax (default)
	// or percentile (Percentile, default 99.99).
	Calibrate  string
	Percentile float64
	// Exclude leaves layers whose node or weight name matches unquantized.
	Exclude *regexp.Regexp
	// AccuracyLevel is MatMulNBits' accuracy_level (0: float compute).
	AccuracyLevel int
	// QuantizeConv includes 2-D Conv layers in qdq4, with 4-bit weights
	// per output channel (DequantizeLinear INT4, axis 0).
	QuantizeConv bool
	// Seed drives synthetic data and random rotations.
	Seed uint64
	// BatchSize is the calibration batch (default 32).
	BatchSize int
	// Damp is GPTQ's relative damping (default 0.01).
	Damp float64
	// ActOrder quantizes GPTQ columns by descending Hessian diagonal.
	ActOrder bool
	// Sequential collects each GPTQ/RSQ layer's Hessian from the model
	// with the earlier layers already quantized (one calibration pass per
	// group of independent layers) instead of from the float model.
	Sequential bool
	// Logf receives progress and notes; may be nil.
	Logf func(format string, args ...any)
}

func (o *Options) defaults() error {
	if o.Format == "" {
		o.Format = FormatQDQ
	}
	if o.Bits == 0 {
		o.Bits = 8
		if o.Format == FormatQDQ4 {
			o.Bits = 4
		}
	}
	if o.Block == 0 {
		o.Block = 32
	}
	if o.Method == "" {
		o.Method = MethodRTN
	}
	if o.Rotate == "" {
		o.Rotate = RotateNone
	}
	if o.CalibSamples <= 0 {
		o.CalibSamples = 64
	}
	if o.Calibrate == "" {
		o.Calibrate = CalibMinMax
	}
	if o.Percentile == 0 {
		o.Percentile = 99.99
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.Damp <= 0 {
		o.Damp = 0.01
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	switch o.Format {
	case FormatQDQ, FormatDynamic:
		if o.Bits != 8 {
			return fmt.Errorf("quant: %w: %s stores 8-bit weights (got --bits %d)", ErrOption, o.Format, o.Bits)
		}
	case FormatNBits:
		if o.Bits != 4 && o.Bits != 8 {
			return fmt.Errorf("quant: %w: nbits takes 4 or 8 bits (got %d)", ErrOption, o.Bits)
		}
		if !ValidNBitsBlock(o.Block) || o.Block > 256 {
			return fmt.Errorf("quant: %w: MatMulNBits block %d (want a power of two from 16 to 256)", ErrOption, o.Block)
		}
	case FormatQDQ4:
		if o.Bits != 4 {
			return fmt.Errorf("quant: %w: qdq4 stores 4-bit weights (got --bits %d)", ErrOption, o.Bits)
		}
		if o.Block < 16 || o.Block > 256 {
			return fmt.Errorf("quant: %w: qdq4 block %d (want 16 to 256)", ErrOption, o.Block)
		}
	default:
		return fmt.Errorf("quant: %w: format %q (want qdq, dynamic, nbits or qdq4)", ErrOption, o.Format)
	}
	if o.AccuracyLevel < 0 || o.AccuracyLevel > 4 {
		return fmt.Errorf("quant: %w: accuracy level %d (want 0 to 4)", ErrOption, o.AccuracyLevel)
	}
	if o.AccuracyLevel != 0 && o.Format != FormatNBits {
		return fmt.Errorf("quant: %w: an accuracy level applies to nbits only, not %s", ErrOption, o.Format)
	}
	switch o.Calibrate {
	case CalibMinMax, CalibPercentile:
	default:
		return fmt.Errorf("quant: %w: range method %q (want minmax or percentile)", ErrOption, o.Calibrate)
	}
	switch o.Method {
	case MethodRTN, MethodGPTQ, MethodRSQ:
	default:
		return fmt.Errorf("quant: %w: method %q (want rtn, gptq or rsq)", ErrOption, o.Method)
	}
	switch o.Rotate {
	case RotateNone, RotateHadamard, RotateFused:
	default:
		return fmt.Errorf("quant: %w: rotation %q (want none, hadamard or fused)", ErrOption, o.Rotate)
	}
	return nil
}

// weightScheme returns the scheme and granularity of layer weights.
func (o *Options) weightScheme() (Scheme, Granularity) {
	s := Scheme{Bits: o.Bits, Symmetric: !o.Asymmetric}
	switch o.Format {
	case FormatNBits, FormatQDQ4:
		return s, PerBlock(o.Block)
	}
	s = Int8Sym // onnxruntime's integer kernels want symmetric int8 weights
	if o.PerTensor {
		return s, PerTensor()
	}
	return s, PerChannel()
}

// layerScheme returns the scheme and granularity of one layer: Convs in
// qdq4 are per output channel (the blocks of DequantizeLinear run along
// one axis, not across the unfolded [in·kh·kw] row).
func (o *Options) layerScheme(l *Layer) (Scheme, Granularity) {
	s, g := o.weightScheme()
	if o.Format == FormatQDQ4 && l.Op() == "Conv" {
		return s, PerChannel()
	}
	return s, g
}

// LayerReport describes one quantized layer.
type LayerReport struct {
	Node        string  `json:"node"`
	Op          string  `json:"op"`
	Weight      string  `json:"weight"`
	Shape       []int64 `json:"shape"`
	Bits        int     `json:"bits"`
	Symmetric   bool    `json:"symmetric"`
	Granularity string  `json:"granularity"`
	Method      string  `json:"method"`
	ScaleMin    float32 `json:"scale_min"`
	ScaleMax    float32 `json:"scale_max"`
	// WeightError is ‖W − Ŵ‖/‖W‖.
	WeightError float64 `json:"weight_rel_error"`
	// OutputError is ‖XW − XŴ‖/‖XW‖ over the calibration inputs of the
	// layer, when they were captured (GPTQ and RSQ), else absent.
	OutputError *float64 `json:"output_rel_error,omitempty"`
}

// Report describes a quantization run.
type Report struct {
	Format     string        `json:"format"`
	Method     string        `json:"method"`
	Rotate     string        `json:"rotate"`
	Calibrate  string        `json:"calibrate,omitempty"`
	Samples    int           `json:"calibration_samples,omitempty"`
	Layers     []LayerReport `json:"layers"`
	Skipped    []string      `json:"skipped,omitempty"`
	Activation int           `json:"quantized_activations,omitempty"`
	Notes      []string      `json:"notes,omitempty"`
	// Upgrade is set when the format needed a newer opset than the
	// model's and the model was upgraded first.
	Upgrade *upgrade.Report `json:"opset_upgrade,omitempty"`
}

func (r *Report) note(o *Options, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.Notes = append(r.Notes, s)
	o.Logf("%s", s)
}

// Quantize rewrites m in place into the chosen format and returns what
// it did.
func Quantize(ctx context.Context, m *graph.Model, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Format: opts.Format, Method: opts.Method, Rotate: opts.Rotate}
	// Weights held in Constant nodes are quantized like initializers; a
	// model that keeps every constant in Constant nodes gets its
	// constants back in that form.
	constForm := len(m.Graph.Proto.Initializer) == 0
	if _, err := m.BypassConstantIdentities(); err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	lifted, err := m.ConstantsToInitializers(readAsWeight)
	if err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	switch opts.Format {
	case FormatQDQ:
		err = quantizeQDQ(ctx, m, &opts, rep)
	case FormatDynamic:
		err = quantizeDynamic(ctx, m, &opts, rep)
	default:
		err = quantizeWeightOnly(ctx, m, &opts, rep)
	}
	if err != nil {
		return nil, err
	}
	if len(rep.Layers) == 0 {
		why := ""
		if len(rep.Skipped) > 0 {
			why = fmt.Sprintf(" (%d left float, first: %s)", len(rep.Skipped), rep.Skipped[0])
		}
		return nil, fmt.Errorf("quant: %s: %w: 0 layers quantized%s, the model would not change", opts.Format, ErrNothingQuantized, why)
	}
	switch {
	case constForm && lifted > 0:
		if err := m.InitializersToConstants(); err != nil {
			return nil, fmt.Errorf("quant: %w", err)
		}
	case lifted > 0:
		rep.note(&opts, "%d weights held in Constant nodes are stored as initializers", lifted)
	}
	return rep, nil
}

// readAsWeight reports whether a constant is read as a layer weight or
// bias or a normalisation parameter.
func readAsWeight(v *graph.Value) bool {
	for _, c := range v.Consumers {
		if c.Domain() != "" {
			continue
		}
		switch c.Op() {
		case "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization":
			return true
		}
	}
	return false
}

// dataset returns the calibration data, synthesising it when none was
// given.
func (o *Options) dataset(m *graph.Model, rep *Report) (Dataset, error) {
	if o.Calib != nil {
		d := *o.Calib
		if o.CalibSamples > 0 && d.Len() > o.CalibSamples {
			var err error
			if d.Inputs, err = d.Batch(0, o.CalibSamples); err != nil {
				return Dataset{}, err
			}
		}
		rep.Samples = d.Len()
		return d, d.check(m)
	}
	d, err := SyntheticDataset(m, o.CalibSamples, o.Seed)
	if err != nil {
		return Dataset{}, err
	}
	rep.note(o, "calibrating on %d synthetic samples (seed %d): give --calib data for real ranges", o.CalibSamples, o.Seed)
	rep.Samples = d.Len()
	return d, nil
}

// quantizeWeights quantizes each layer's weight with the chosen method
// and returns the results in layer order.
func quantizeWeights(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, data func() (Dataset, error)) ([]*Quantized, error) {
	out := make([]*Quantized, len(layers))
	err := quantizeEach(ctx, m, layers, o, rep, data, func(i int, q *Quantized) error {
		out[i] = q
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quantizeEach quantizes each layer's weight with the chosen method and
// hands each result to emit, in layer order, as soon as it and the
// layers before it are done; a result emit does not keep is dropped, so
// the codes of one layer at a time (a few with RTN's parallel workers)
// are held, not the whole model's.
func quantizeEach(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, data func() (Dataset, error), emit func(i int, q *Quantized) error) error {
	var hess map[*Layer]*Hessian
	if o.Method != MethodRTN {
		d, err := data()
		if err != nil {
			return err
		}
		var weights map[*Layer]TokenWeights
		if o.Method == MethodRSQ {
			if weights, err = rsqWeights(ctx, m, layers, d, o, rep); err != nil {
				return err
			}
		}
		if o.Sequential {
			qs, err := quantizeSequential(ctx, m, layers, o, rep, d, weights)
			if err != nil {
				return err
			}
			for i, q := range qs {
				if err := emit(i, q); err != nil {
					return err
				}
			}
			return nil
		}
		if hess, err = CollectHessians(ctx, m, layers, d, weights, o.BatchSize); err != nil {
			return err
		}
	}
	if hess == nil {
		return quantizeRTN(ctx, m, layers, o, rep, emit)
	}
	for i, l := range layers {
		progress.Report(ctx, o.Method+" layers", i, len(layers))
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := l.Matrix(m)
		if err != nil {
			return err
		}
		q, lr, err := o.quantizeLayer(l, w, hess[l])
		if err != nil {
			return err
		}
		delete(hess, l)
		rep.Layers = append(rep.Layers, lr)
		if err := emit(i, q); err != nil {
			return err
		}
	}
	return nil
}

// quantizeRTN rounds the layers in parallel (they are independent) and
// emits them in order. A worker slot is freed when its layer is emitted,
// not when it is rounded, so at most a window of layers is held at once.
func quantizeRTN(ctx context.Context, m *graph.Model, layers []*Layer, o *Options, rep *Report, emit func(i int, q *Quantized) error) error {
	reps := make([]LayerReport, len(layers))
	done := make([]*Quantized, len(layers))
	window := 2 * runtime.GOMAXPROCS(0)
	sem := make(chan struct{}, window)
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	// finish records layer i's result and emits the finished prefix.
	finish := func(i int, q *Quantized, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fail(err)
			q = &Quantized{} // a placeholder so that the prefix advances
		}
		done[i] = q
		for next < len(layers) && done[next] != nil {
			if firstErr == nil {
				if err := emit(next, done[next]); err != nil {
					fail(err)
				}
			}
			done[next] = nil
			next++
			progress.Report(ctx, "rtn layers", next, len(layers))
			<-sem
		}
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			fail(err)
			mu.Unlock()
			break
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			w, err := l.Matrix(m)
			if err != nil {
				finish(i, nil, err)
				return
			}
			s, g := o.layerScheme(l)
			q, err := RTN(w, s, g)
			if err != nil {
				finish(i, nil, fmt.Errorf("quant: layer %s: %w", l.Node, err))
				return
			}
			reps[i] = layerReport(l, w, q, o.Method, nil)
			finish(i, q, nil)
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	rep.Layers = append(rep.Layers, reps...)
	return nil
}

func layerReport(l *Layer, w Matrix, q *Quantized, method string, outErr *float64) LayerReport {
	lr := LayerReport{
		Node: l.Node.Name(), Op: l.Op(), Weight: l.Weight, Shape: l.Dims,
		Bits: q.Scheme.Bits, Symmetric: q.Scheme.Symmetric, Granularity: q.Gran.String(), Method: method,
		ScaleMin: float32(math.Inf(1)), OutputError: outErr,
	}
	for _, g := range q.Grids {
		lr.ScaleMin, lr.ScaleMax = min(lr.ScaleMin, g.Scale), max(lr.ScaleMax, g.Scale)
	}
	num, den := 0.0, 0.0
	span := q.Gran.groupCols(q.Cols)
	for r := range q.Rows {
		for c0 := 0; c0 < q.Cols; c0 += span {
			g := q.Grids[q.GridIndex(r, c0)]
			lo, hi := r*q.Cols+c0, r*q.Cols+min(c0+span, q.Cols)
			for i, code := range q.Q[lo:hi] {
				a := float64(w.Data[lo+i])
				x := a - float64(Dequantize(code, g))
				num += x * x
				den += a * a
			}
		}
	}
	if den > 0 {
		lr.WeightError = math.Sqrt(num / den)
	}
	return lr
}

// quantizeWeightOnly writes MatMulNBits or QDQ int4.
func quantizeWeightOnly(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if _, err := GemmToMatMul(m); err != nil {
		return err
	}
	if o.Format == FormatQDQ4 {
		if err := raiseOpset(m, qdq4Opset, "DequantizeLinear with INT4 blocks", o, rep); err != nil {
			return err
		}
	}
	var data *Dataset
	getData := func() (Dataset, error) {
		if data == nil {
			d, err := o.dataset(m, rep)
			if err != nil {
				return Dataset{}, err
			}
			data = &d
		}
		return *data, nil
	}
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	var layers []*Layer
	for _, l := range FindLayers(m, o.Exclude) {
		switch {
		case l.Op() == "MatMul":
			layers = append(layers, l)
		case l.Op() == "Conv" && o.Format == FormatQDQ4 && o.QuantizeConv && len(l.Dims) == 4:
			layers = append(layers, l)
		default:
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s (%s: weight-only formats rewrite MatMul; qdq4 with --conv also 2-D Conv)", l.Node.Name(), l.Op()))
		}
	}
	// Each layer is packed as soon as it is quantized, so only its codes
	// are held at a time.
	e := newEditor(m)
	err := quantizeEach(ctx, m, layers, o, rep, getData, func(i int, q *Quantized) error {
		if o.Format == FormatNBits {
			return e.emitNBits(layers[i], q, o.AccuracyLevel)
		}
		return e.emitQDQ4(layers[i], q)
	})
	if err != nil {
		return err
	}
	return e.apply()
}

// quantizeQDQ writes static int8 QDQ.
func quantizeQDQ(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if o.PerTensor {
		if err := raiseOpset(m, qdqMinOpset, "QuantizeLinear", o, rep); err != nil {
			return err
		}
	} else if err := raiseOpset(m, qdqOpset, "per-channel QuantizeLinear (axis)", o, rep); err != nil {
		return err
	}
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	rep.Calibrate = o.Calibrate
	if n, err := FoldBatchNorm(m); err != nil {
		return err
	} else if n > 0 {
		rep.note(o, "folded %d BatchNormalization nodes into their Convs", n)
	}
	// Gemm → MatMul (+ Add): onnxruntime runs a quantized MatMul with a
	// float output as MatMulIntegerToFloat wherever it sits, while its
	// QDQ Gemm fusion missed the attention output projections of the ViT
	// fixtures (left float, reading DequantizeLinear weights).
	layers := FindLayers(m, o.Exclude)
	plan := planQDQ(m, layers)
	data, err := o.dataset(m, rep)
	if err != nil {
		return err
	}
	ranges, err := CalibrateRanges(ctx, m, data, plan.own, o.Calibrate, o.Percentile, o.BatchSize)
	if err != nil {
		return err
	}
	em := &qdqEmitter{plan: plan, grids: map[string]Grid{}, params: map[string][2]string{}}
	for _, t := range plan.own {
		r, ok := ranges[t]
		if !ok {
			return fmt.Errorf("quant: qdq: no calibration values for %q", t)
		}
		if em.grids[t], err = Uint8Asym.Fit(r.Lo, r.Hi); err != nil {
			return fmt.Errorf("quant: qdq: tensor %q: %w", t, err)
		}
	}
	rep.Activation = len(plan.marked)
	getData := func() (Dataset, error) { return data, nil }
	if o.Method == MethodRTN {
		// RTN reads only weights: fold first and emit each layer as it
		// is rounded, so that one layer's codes are held at a time.
		if err := plan.applyFolds(m); err != nil {
			return err
		}
		em.e = newEditor(m)
		err = quantizeEach(ctx, m, layers, o, rep, getData, func(i int, q *Quantized) error {
			return em.emitWeight(m, layers[i], q)
		})
		if err != nil {
			return err
		}
	} else {
		// GPTQ runs the model: the folds come after its calibration.
		qs, err := quantizeWeights(ctx, m, layers, o, rep, getData)
		if err != nil {
			return err
		}
		if err := plan.applyFolds(m); err != nil {
			return err
		}
		em.e = newEditor(m)
		for i, l := range layers {
			if err := em.emitWeight(m, l, qs[i]); err != nil {
				return err
			}
		}
	}
	if err := em.emitActivations(m); err != nil {
		return err
	}
	return em.e.apply()
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quantizeLayer quantizes one layer's weights: GPTQ when a Hessian was
// collected for it, RTN otherwise, with its report row.
func (o Options) quantizeLayer(l *Layer, w Matrix, h *Hessian) (*Quantized, LayerReport, error) {
	s, g := o.layerScheme(l)
	var q *Quantized
	var outErr *float64
	var err error
	if h != nil {
		q, err = GPTQ(w, h, s, g, GPTQOptions{Damp: o.Damp, ActOrder: o.ActOrder})
		if err == nil {
			e := h.OutputError(w, q.Dequantize())
			outErr = &e
		}
	} else {
		q, err = RTN(w, s, g)
	}
	if err != nil {
		return nil, LayerReport{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	return q, layerReport(l, w, q, o.Method, outErr), nil
}
