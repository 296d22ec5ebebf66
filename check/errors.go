package check

import "errors"

var (
	// ErrFailed means at least one threshold failed; the wrapping error
	// names the failed gates.
	ErrFailed = errors.New("check failed")
	// ErrIncompatible means the two models cannot be compared: different
	// inputs, a missing output, or outputs of different shapes.
	ErrIncompatible = errors.New("models are not comparable")
	// ErrData means the input data or labels do not fit the models.
	ErrData = errors.New("data does not fit the models")
)
