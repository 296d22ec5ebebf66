package quant

import "errors"

// Sentinel errors, for errors.Is.
var (
	// ErrUnsupported marks a model, layer or option combination that
	// quant cannot handle (an op it does not rewrite, a weight that is not
	// constant, a block size the format forbids).
	ErrUnsupported = errors.New("quant: unsupported")
	// ErrInvalid marks numeric input quant refuses: non-finite weights or
	// calibration values, mismatched shapes.
	ErrInvalid = errors.New("quant: invalid input")
	// ErrOption marks settings quant does not have: an unknown format,
	// method, rotation or range method, or a bit width, block size or
	// accuracy level outside what the format allows.
	ErrOption = errors.New("invalid option")
	// ErrNothingQuantized marks a run that found no layer to quantize,
	// so that the written model would equal the input.
	ErrNothingQuantized = errors.New("nothing to quantize")
)
