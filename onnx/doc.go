// Package onnx holds the Go code generated from onnx.proto, pare's copy
// of the ONNX model schema. onnx.pb.go is generated: change onnx.proto
// and run `go tool -modfile=tools/go.mod task proto`, never edit it by hand.
package onnx
