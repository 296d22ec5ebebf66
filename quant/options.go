package quant

import (
	"fmt"
	"regexp"

	"github.com/pare-dev/pare/graph"
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
	// ChannelSets gives the model's channel sets for the fused rotation
	// (RotateFused, where it is required): which values carry the same
	// feature axis is the pruning analysis' knowledge, and callers pass
	// its groups (prune.ChannelSets). The rotation covers the part of a
	// set around a MatMul's input that its ops let a rotation through.
	ChannelSets func(*graph.Model) ([]graph.ChannelSet, error)
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
	if o.Rotate == RotateFused && o.ChannelSets == nil {
		return fmt.Errorf("quant: %w: the fused rotation needs the model's channel sets (Options.ChannelSets)", ErrOption)
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

// lazyDataset returns a getter of the calibration data (o.dataset) that
// reads it on its first call only: RTN never asks for it.
func (o *Options) lazyDataset(m *graph.Model, rep *Report) func() (Dataset, error) {
	var data *Dataset
	return func() (Dataset, error) {
		if data == nil {
			d, err := o.dataset(m, rep)
			if err != nil {
				return Dataset{}, err
			}
			data = &d
		}
		return *data, nil
	}
}

// dataset returns the calibration data, synthesising it when none was
// given.
func (o *Options) dataset(m *graph.Model, rep *Report) (Dataset, error) {
	if o.Calib != nil {
		d := *o.Calib
		if o.CalibSamples > 0 && d.Len() > o.CalibSamples {
			var err error
			if d, err = d.first(o.CalibSamples); err != nil {
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
