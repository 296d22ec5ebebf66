package graph

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pare-dev/pare/onnx"
)

// aliasMin is the smallest raw_data that unmarshalOwned leaves in the
// file buffer instead of copying.
const aliasMin = 32

// unmarshalOwned decodes a buffer the caller hands over for good: the
// raw_data of the main graph's initializers (nearly all of a model's
// bytes) is not copied but points into data, capped so that appending to
// it copies. protobuf-go always copies bytes fields, so those fields are
// cut out of the wire data before decoding and attached afterwards. Where
// the layout is unusual (the graph or a raw_data field given twice,
// malformed wire data) data is decoded as is, with copies.
func unmarshalOwned(data []byte) (*onnx.ModelProto, error) {
	stripped, refs, ok := stripRawData(data)
	if !ok {
		return unmarshal(data)
	}
	mp, err := unmarshal(stripped)
	if err != nil {
		return nil, err
	}
	inits := mp.GetGraph().GetInitializer()
	for _, r := range refs {
		if r.init >= len(inits) || inits[r.init].RawData != nil {
			return unmarshal(data) // cannot happen for the layouts accepted
		}
		inits[r.init].RawData = r.raw
	}
	return mp, nil
}

// rawRef is a raw_data field cut out of the wire data: the index of its
// initializer in the main graph and its bytes.
type rawRef struct {
	init int
	raw  []byte
}

// Field numbers stripRawData walks: ModelProto.graph,
// GraphProto.initializer, TensorProto.raw_data.
const (
	fieldModelGraph       = 7
	fieldGraphInitializer = 5
	fieldTensorRawData    = 9
)

// walkFields calls visit with each field of the wire message data: its
// number, whether it is length-delimited, its bytes (tag included) and,
// when length-delimited, its payload. It returns false when data is
// malformed or visit returns false.
func walkFields(data []byte, visit func(num protowire.Number, isBytes bool, field, body []byte) bool) bool {
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		field := b[:n+m]
		b = b[n+m:]
		var body []byte
		isBytes := typ == protowire.BytesType
		if isBytes {
			body, _ = protowire.ConsumeBytes(field[n:])
		}
		if !visit(num, isBytes, field, body) {
			return false
		}
	}
	return true
}

// stripRawData returns data without the raw_data fields of at least
// aliasMin bytes of the main graph's initializers, and those fields.
// ok is false when there is nothing to strip or the layout is one it
// does not handle.
func stripRawData(data []byte) (out []byte, refs []rawRef, ok bool) {
	out = make([]byte, 0, 1<<12)
	graphs := 0
	ok = walkFields(data, func(num protowire.Number, isBytes bool, field, body []byte) bool {
		if num != fieldModelGraph || !isBytes {
			out = append(out, field...)
			return true
		}
		if graphs++; graphs > 1 {
			return false // repeated message fields merge; leave that to protobuf
		}
		g, gRefs, gok := stripGraph(body)
		if !gok {
			return false
		}
		refs = gRefs
		out = protowire.AppendTag(out, fieldModelGraph, protowire.BytesType)
		out = protowire.AppendBytes(out, g)
		return true
	})
	if !ok {
		return nil, nil, false
	}
	return out, refs, len(refs) > 0
}

func stripGraph(data []byte) (out []byte, refs []rawRef, ok bool) {
	out = make([]byte, 0, len(data)/64+64)
	init := 0
	ok = walkFields(data, func(num protowire.Number, isBytes bool, field, body []byte) bool {
		if num != fieldGraphInitializer || !isBytes {
			out = append(out, field...)
			return true
		}
		t, raw, tok := stripTensor(body)
		if !tok {
			return false
		}
		if raw != nil {
			refs = append(refs, rawRef{init, raw})
		}
		init++
		out = protowire.AppendTag(out, fieldGraphInitializer, protowire.BytesType)
		out = protowire.AppendBytes(out, t)
		return true
	})
	if !ok {
		return nil, nil, false
	}
	return out, refs, true
}

// stripTensor cuts a large raw_data field out of a TensorProto.
func stripTensor(data []byte) (out, raw []byte, ok bool) {
	out = make([]byte, 0, 256)
	seen := false
	ok = walkFields(data, func(num protowire.Number, isBytes bool, field, body []byte) bool {
		if num != fieldTensorRawData || !isBytes {
			out = append(out, field...)
			return true
		}
		if seen {
			return false // the last occurrence would win; rare, decode normally
		}
		seen = true
		if len(body) < aliasMin {
			out = append(out, field...)
			return true
		}
		raw = body[:len(body):len(body)]
		return true
	})
	if !ok {
		return nil, nil, false
	}
	return out, raw, true
}
