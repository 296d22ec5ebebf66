package ort

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// onnxruntime_go v1.27 cannot hand back two kinds of outputs that
// onnxruntime allocates: 2-byte custom element types (float16, bfloat16:
// it copies one byte per element and then fails with "not enough space"),
// and rank-0 tensors (its Shape.Validate refuses empty shapes). Their
// shapes are usually not static, so they cannot simply be pre-allocated.
// Instead the session's model gets a few extra nodes per such output:
//
//	out ─ Cast(to=float) ─ Reshape([-1]) ─▶ out::pare_flat   (float32, 1-D)
//	   └─ Shape ─────────────────────────▶ out::pare_shape  (int64)
//
// and Run converts the float32 values back to half bits (exact, since
// every half value is a float32) and restores the shape. A Cast is added
// only for half types; Reshape and Shape are always added, which also
// covers outputs whose rank onnxruntime does not know (it reports those
// like scalars).

// adapter says how one model output is read from the session's outputs.
type adapter struct {
	value int // index of the output holding the data
	shape int // index of the int64 shape output, or -1
	half  tensor.DType
}

// needsAdapter reports whether an output must be read through the extra
// nodes described above.
func needsAdapter(o ValueInfo) bool {
	if !o.Tensor || o.DType == tensor.Invalid {
		return false
	}
	return o.DType == tensor.Float16 || o.DType == tensor.BFloat16 || len(o.Dims) == 0
}

// adaptModel returns the model bytes with adapter nodes for every output
// that needs one, the session output names and the adapters, one per
// model output. When no output needs one it returns nil bytes.
func adaptModel(model []byte, outs []ValueInfo) ([]byte, []string, []adapter, error) {
	sessOut := make([]string, 0, len(outs))
	adapters := make([]adapter, len(outs))
	var m *onnx.ModelProto
	for i, o := range outs {
		if !needsAdapter(o) {
			adapters[i] = adapter{value: len(sessOut), shape: -1}
			sessOut = append(sessOut, o.Name)
			continue
		}
		if m == nil {
			m = &onnx.ModelProto{}
			if err := (proto.UnmarshalOptions{RecursionLimit: 100}).Unmarshal(model, m); err != nil {
				return nil, nil, nil, fmt.Errorf("%w: %v", ErrModel, err)
			}
		}
		g := m.GetGraph()
		src := o.Name
		if o.DType == tensor.Float16 || o.DType == tensor.BFloat16 {
			cast := src + "::pare_f32"
			g.Node = append(g.Node, node("Cast", []string{src}, cast, &onnx.AttributeProto{
				Name: proto.String("to"), Type: onnx.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnx.TensorProto_FLOAT)),
			}))
			src = cast
			adapters[i].half = o.DType
		}
		flat, shape, minus1 := o.Name+"::pare_flat", o.Name+"::pare_shape", o.Name+"::pare_minus1"
		g.Node = append(g.Node,
			node("Constant", nil, minus1, &onnx.AttributeProto{
				Name: proto.String("value"), Type: onnx.AttributeProto_TENSOR.Enum(),
				T: &onnx.TensorProto{Dims: []int64{1}, DataType: proto.Int32(int32(onnx.TensorProto_INT64)), Int64Data: []int64{-1}},
			}),
			node("Reshape", []string{src, minus1}, flat),
			node("Shape", []string{o.Name}, shape),
		)
		g.Output = append(g.Output, &onnx.ValueInfoProto{Name: proto.String(flat)}, &onnx.ValueInfoProto{Name: proto.String(shape)})
		adapters[i].value = len(sessOut)
		sessOut = append(sessOut, flat)
	}
	if m == nil {
		return nil, sessOut, adapters, nil
	}
	// Shape outputs go last so that the others keep their positions.
	for i := range adapters {
		if needsAdapter(outs[i]) {
			adapters[i].shape = len(sessOut)
			sessOut = append(sessOut, outs[i].Name+"::pare_shape")
		}
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	return b, sessOut, adapters, nil
}

func node(op string, in []string, out string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: proto.String(op), Name: proto.String(out), Input: in, Output: []string{out}, Attribute: attrs}
}

// readModel reads a model file for adaptModel; external data stays where
// it is and is found through Options.ExternalDataDir.
func readModel(path string) ([]byte, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrModel, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrModel, err)
	}
	return b, dir, nil
}

// readAdapted turns the session outputs of model output i into a Dense.
func readAdapted(a adapter, vals []tensor.Dense) (tensor.Dense, error) {
	d := vals[a.value]
	if a.shape < 0 {
		return d, nil
	}
	shape, ok := vals[a.shape].Data.([]int64)
	if !ok {
		return tensor.Dense{}, fmt.Errorf("shape output is %v", vals[a.shape])
	}
	if a.half != tensor.Invalid {
		f, ok := d.Data.([]float32)
		if !ok {
			return tensor.Dense{}, fmt.Errorf("cast output is %v", d)
		}
		enc := tensor.Float32ToFloat16
		if a.half == tensor.BFloat16 {
			enc = tensor.Float32ToBFloat16
		}
		bits := make([]uint16, len(f))
		for i, v := range f {
			bits[i] = enc(v)
		}
		return tensor.NewOf(a.half, shape, bits)
	}
	return tensor.NewOf(d.DType, shape, d.Data)
}
