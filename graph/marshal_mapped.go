package graph

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pare-dev/pare/onnx"
)

// MarshalMapped encodes mp (a model, or a variant of one built for a
// runtime, sharing its tensors) with every main-graph initializer that
// still aliases a memory-mapped external data file written as a
// reference to that file, and returns the folder the references are
// relative to ("" when there are none). A runtime given the bytes and the
// folder reads those weights from disk itself: a model of any size is
// handed over in a few megabytes, without its weights read into memory.
// mp and its tensors are not changed.
func MarshalMapped(mp *onnx.ModelProto) ([]byte, string, error) {
	gp := mp.GetGraph()
	if gp == nil {
		data, err := marshalDet(mp)
		return data, "", err
	}
	dir := ""
	inits := make([]*onnx.TensorProto, len(gp.Initializer))
	refs := 0
	for i, t := range gp.Initializer {
		inits[i] = t
		d, loc, off, ok := mappedAt(t.GetRawData())
		if !ok || (dir != "" && d != dir) {
			continue
		}
		dir = d
		ref := shallowCopy(t).(*onnx.TensorProto)
		ref.RawData = nil
		ref.DataLocation = onnx.TensorProto_EXTERNAL.Enum()
		ref.ExternalData = []*onnx.StringStringEntryProto{
			entry("location", loc),
			entry("offset", strconv.FormatInt(off, 10)),
			entry("length", strconv.Itoa(len(t.RawData))),
		}
		inits[i] = ref
		refs++
	}
	if refs == 0 {
		data, err := marshalDet(mp)
		return data, "", err
	}
	g := shallowCopy(gp).(*onnx.GraphProto)
	g.Initializer = inits
	m := shallowCopy(mp).(*onnx.ModelProto)
	m.Graph = g
	data, err := marshalDet(m)
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) >= InlineLimit {
		return nil, "", fmt.Errorf("graph: %w: %d bytes even with %d tensors referenced", ErrUnsupported, len(data), refs)
	}
	return data, dir, nil
}

// shallowCopy returns a new message whose fields share m's values.
func shallowCopy(m proto.Message) proto.Message {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return dst.Interface()
}
