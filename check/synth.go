package check

import (
	"fmt"
	"math/rand/v2"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// Defaults for synthesised inputs and batching.
const (
	// DefaultSamples is the number of synthesised samples.
	DefaultSamples = 8
	// DefaultDim replaces symbolic dims other than the batch axis
	// (sequence lengths, image sizes of fully convolutional models).
	DefaultDim = 16
	// DefaultBatchSize is the batch for models whose batch axis is
	// symbolic.
	DefaultBatchSize = 32
	// MaxDataBytes bounds input data held in memory at once: synthetic
	// inputs and .npz arrays. (.npy inputs are streamed batch by batch.)
	MaxDataBytes = 256 << 20
)

// SynthOptions control Synthesize. The zero value gives DefaultSamples
// samples, seed 0, DefaultDim and integers in [0, 2).
type SynthOptions struct {
	Samples int64
	Seed    uint64
	// Dim replaces symbolic dims after the first.
	Dim int64
	// IntLow and IntHigh bound integer inputs to [IntLow, IntHigh); both
	// zero means [0, 2), which is valid for index inputs of any size.
	IntLow, IntHigh int64
	// Shapes fixes the sizes of the named inputs (--input-shape) past
	// the batch axis, which still follows Samples when it is symbolic or
	// 1. A shape must have the input's rank and agree with its static
	// dims.
	Shapes map[string][]int64
}

// Synthesize makes inputs from their declared shapes. Axis 0 is the batch:
// when it is symbolic or 1 it gets Samples rows (run a static batch of 1
// one sample at a time), otherwise its static size. Other symbolic dims
// get Dim. Floats are drawn from N(0, 1), integers uniformly from
// [IntLow, IntHigh), bools are false or true with equal odds. Input i
// draws from its own PCG stream seeded (Seed, i), so the values do not
// depend on other inputs' sizes.
func Synthesize(inputs []ort.ValueInfo, o SynthOptions) (map[string]tensor.Dense, error) {
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	if o.Dim == 0 {
		o.Dim = DefaultDim
	}
	if o.IntLow == 0 && o.IntHigh == 0 {
		o.IntHigh = 2
	}
	if o.Samples < 0 || o.Dim < 0 || o.IntHigh <= o.IntLow {
		return nil, fmt.Errorf("check: bad synthesis options: %d samples, dim %d, integer range [%d, %d)", o.Samples, o.Dim, o.IntLow, o.IntHigh)
	}
	total := int64(0)
	out := make(map[string]tensor.Dense, len(inputs))
	for i, in := range inputs {
		if !in.Tensor || in.DType == tensor.Invalid {
			return nil, fmt.Errorf("check: input %v cannot be synthesised", in)
		}
		if len(in.Dims) == 0 {
			return nil, fmt.Errorf("check: %w: input %q declares no shape (or is a scalar); give data with --inputs", ErrData, in.Name)
		}
		fixed, hasFixed := o.Shapes[in.Name]
		if hasFixed && len(fixed) != len(in.Dims) {
			return nil, fmt.Errorf("check: %w: --input-shape for %q has %d sizes, the input has rank %d", ErrData, in.Name, len(fixed), len(in.Dims))
		}
		shape := make([]int64, len(in.Dims))
		for j, d := range in.Dims {
			switch {
			case j == 0 && (d < 0 || d == 1):
				shape[j] = o.Samples
			case hasFixed && d >= 0 && fixed[j] != d:
				return nil, fmt.Errorf("check: %w: --input-shape for %q: dim %d is %d, got %d", ErrData, in.Name, j, d, fixed[j])
			case hasFixed:
				shape[j] = fixed[j]
			case d < 0:
				shape[j] = o.Dim
			default:
				shape[j] = d
			}
		}
		// Refused from the shape, before anything is allocated.
		n, err := tensor.NumElements(shape)
		if err != nil || in.DType.Size() > 0 && n > (MaxDataBytes-total)/int64(in.DType.Size()) {
			return nil, fmt.Errorf("check: %w: synthetic input %q of shape %s is over the limit of %d MiB held in memory (fewer samples, or data in a .npy file)",
				ErrData, in.Name, tensor.FormatShape(shape), MaxDataBytes>>20)
		}
		total += n * int64(in.DType.Size())
		d, err := tensor.Zeros(in.DType, shape)
		if err != nil {
			return nil, fmt.Errorf("check: input %q: %w", in.Name, err)
		}
		if err := fill(d, rand.New(rand.NewPCG(o.Seed, uint64(i))), o.IntLow, o.IntHigh); err != nil {
			return nil, fmt.Errorf("check: input %q: %w", in.Name, err)
		}
		out[in.Name] = d
	}
	return out, nil
}

func fill(d tensor.Dense, rng *rand.Rand, lo, hi int64) error {
	if !d.DType.IsFloat() && d.DType != tensor.Bool && lo < 0 {
		switch d.DType {
		case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
			return fmt.Errorf("integer range [%d, %d) does not fit %v", lo, hi, d.DType)
		}
	}
	integer := func() int64 { return lo + rng.Int64N(hi-lo) }
	switch v := d.Data.(type) {
	case []float32:
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
	case []float64:
		for i := range v {
			v[i] = rng.NormFloat64()
		}
	case []uint16:
		for i := range v {
			switch d.DType {
			case tensor.Float16:
				v[i] = tensor.Float32ToFloat16(float32(rng.NormFloat64()))
			case tensor.BFloat16:
				v[i] = tensor.Float32ToBFloat16(float32(rng.NormFloat64()))
			default:
				v[i] = uint16(integer())
			}
		}
	case []int8:
		for i := range v {
			v[i] = int8(integer())
		}
	case []uint8:
		for i := range v {
			v[i] = uint8(integer())
		}
	case []int16:
		for i := range v {
			v[i] = int16(integer())
		}
	case []int32:
		for i := range v {
			v[i] = int32(integer())
		}
	case []uint32:
		for i := range v {
			v[i] = uint32(integer())
		}
	case []int64:
		for i := range v {
			v[i] = integer()
		}
	case []uint64:
		for i := range v {
			v[i] = uint64(integer())
		}
	case []bool:
		for i := range v {
			v[i] = rng.IntN(2) == 1
		}
	default:
		return fmt.Errorf("cannot synthesise %v", d.DType)
	}
	return nil
}

// DefaultBatch is the batch size to run inputs with: the static size of
// axis 0 when an input declares one, else DefaultBatchSize.
func DefaultBatch(inputs []ort.ValueInfo) int64 {
	for _, in := range inputs {
		if len(in.Dims) > 0 && in.Dims[0] > 0 {
			return in.Dims[0]
		}
	}
	return DefaultBatchSize
}
