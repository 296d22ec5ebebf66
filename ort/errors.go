package ort

import "errors"

var (
	// ErrUnavailable means the onnxruntime shared library could not be
	// found, loaded or initialised, or is an incompatible version.
	ErrUnavailable = errors.New("onnxruntime unavailable")
	// ErrModel means onnxruntime refused the model when creating a session.
	ErrModel = errors.New("onnxruntime cannot load the model")
	// ErrInput means the inputs given to Run do not match the model's
	// declared inputs (names, element types, ranks or static dims), or an
	// output name does not exist.
	ErrInput = errors.New("inputs do not match the model")
	// ErrRun means onnxruntime failed while running a session.
	ErrRun = errors.New("onnxruntime run failed")
)
