package graph

import (
	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
)

// Clone returns a copy of m that can be changed without changing m, and
// that shares the raw bytes of m's tensors instead of copying them. That
// is safe because no code writes into a tensor's raw bytes: new data
// replaces the slice (SetRaw and the setters built on it), and bytes
// that alias a mapped data file are read-only. Sharing keeps a model of
// several GiB from being copied onto the heap for a reference copy, and
// keeps the copy's weights aliasing their data file, so a runtime is
// handed them by reference (MarshalMapped) as it is m's.
//
// The copy is built by FromProto: it has no Path, Dir or External, as
// an in-memory model. m must not be read by another goroutine while
// Clone runs: the bytes are detached from m's tensors for the copy and
// put back.
func Clone(m *Model) (*Model, error) {
	return FromProto(CloneProto(m.Proto))
}

// CloneProto is Clone for a ModelProto.
func CloneProto(mp *onnx.ModelProto) *onnx.ModelProto {
	tensors := modelTensors(mp)
	raw := make([][]byte, len(tensors))
	for i, t := range tensors {
		raw[i], t.RawData = t.RawData, nil
	}
	c := proto.Clone(mp).(*onnx.ModelProto)
	for i, t := range tensors {
		t.RawData = raw[i]
	}
	for i, t := range modelTensors(c) {
		t.RawData = raw[i]
	}
	return c
}

// modelTensors lists every tensor of mp in forEachTensor's fixed order.
func modelTensors(mp *onnx.ModelProto) []*onnx.TensorProto {
	var out []*onnx.TensorProto
	forEachTensor(mp, func(t *onnx.TensorProto) { out = append(out, t) })
	return out
}
