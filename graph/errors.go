package graph

import "errors"

// Sentinel errors, for errors.Is.
var (
	// ErrInvalidModel marks input that is not a well-formed ONNX model.
	ErrInvalidModel = errors.New("invalid model")
	// ErrUnsafePath marks an external data location that would escape the
	// model's folder or name something other than a regular file.
	ErrUnsafePath = errors.New("unsafe external data location")
	// ErrUnsupported marks a well-formed model that pare cannot handle.
	ErrUnsupported = errors.New("unsupported model")
	// ErrOutputExists marks a save that would overwrite the input model or
	// its data files.
	ErrOutputExists = errors.New("output would overwrite input")
	// ErrWrite marks an output that could not be written (a missing or
	// read-only folder, a full disk); nothing partial is left visible.
	ErrWrite = errors.New("cannot write")
)
