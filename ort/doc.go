// Package ort runs ONNX models with onnxruntime. It is the only package in
// pare that imports github.com/yalue/onnxruntime_go.
//
// The shared library is found once per process (Init): an explicit path
// (the --ort-lib flag), else $ONNXRUNTIME_LIB, else well-known places,
// starting with the cache that scripts/fetch-onnxruntime.sh fills. When
// none loads, every entry point returns an error wrapping ErrUnavailable
// in one line that lists the paths tried.
//
// A Session wraps one onnxruntime session. Run takes named tensor.Dense
// inputs and returns tensor.Dense outputs of any numeric element type;
// every onnxruntime value it creates, including outputs onnxruntime
// allocated, is destroyed before Run returns. RunBatched splits a dataset
// along axis 0 and concatenates the outputs; Time measures latency.
// CaptureModel adds intermediate values to a model's outputs so that they
// can be read back.
//
// Limits inherited from onnxruntime_go v1.27: outputs onnxruntime allocates
// for 2-byte custom element types (float16, bfloat16) are copied with a
// byte count equal to the element count, losing half the data, so Session
// always pre-allocates those outputs, learning their shape from a first
// run when it is not static; string, sequence and map values are not
// supported; a session computes all of its outputs on every run, the
// requested names only select what is returned.
package ort
