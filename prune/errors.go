package prune

import "errors"

// Sentinel errors, for errors.Is.
var (
	// ErrPlanMismatch marks a plan that does not describe the model it is
	// applied to (different groups or members).
	ErrPlanMismatch = errors.New("plan does not match model")
	// ErrInvalidOption marks settings that make no sense (ratio out of
	// range, bad N:M pattern, bad regular expression).
	ErrInvalidOption = errors.New("invalid option")
	// ErrPlanInvalid marks a plan file that is not a plan (bad JSON,
	// unknown fields).
	ErrPlanInvalid = errors.New("invalid plan")
	// ErrTarget marks a target that cannot be reached under the limits.
	ErrTarget = errors.New("target not reachable")
	// ErrUnsupported marks a model element pruning cannot edit safely.
	ErrUnsupported = errors.New("unsupported")
)
