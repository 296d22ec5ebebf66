package ort

import (
	"os"
	"slices"

	"google.golang.org/protobuf/proto"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/onnx"
)

// infoModelMax is the largest model file readInfo parses to look for
// external initializers; graph files of models with external data are
// far smaller.
const infoModelMax = 64 << 20

// readInfoExternal asks onnxruntime for the inputs and outputs of a model
// whose initializers are (partly) external data, without loading them:
// the throwaway session sees those initializers as typed graph inputs,
// which are then left out of the inputs reported. ok is false when the
// model has no external initializer, cannot be parsed here or does not
// load that way, and the caller asks the usual way.
func readInfoExternal(model []byte, path string) (ins, outs []ort.InputOutputInfo, ok bool) {
	if model == nil {
		fi, serr := os.Stat(path)
		if serr != nil || fi.Size() > infoModelMax {
			return nil, nil, false
		}
		var err error
		if model, err = os.ReadFile(path); err != nil {
			return nil, nil, false
		}
	}
	mp := &onnx.ModelProto{}
	if proto.Unmarshal(model, mp) != nil || mp.Graph == nil {
		return nil, nil, false
	}
	g := mp.Graph
	moved := map[string]bool{}
	declared := map[string]bool{}
	for _, v := range g.Input {
		declared[v.GetName()] = true
	}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnx.TensorProto) bool {
		if t.GetDataLocation() != onnx.TensorProto_EXTERNAL {
			return false
		}
		moved[t.GetName()] = true
		if !declared[t.GetName()] {
			dims := &onnx.TensorShapeProto{}
			for _, d := range t.Dims {
				dims.Dim = append(dims.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
			}
			g.Input = append(g.Input, &onnx.ValueInfoProto{Name: t.Name, Type: &onnx.TypeProto{
				Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{ElemType: t.DataType, Shape: dims}}}})
		}
		return true
	})
	if len(moved) == 0 {
		return nil, nil, false
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		return nil, nil, false
	}
	ins, outs, err = ort.GetInputOutputInfoWithONNXData(b)
	if err != nil {
		// Some kernels want constant weights; ask the usual way.
		return nil, nil, false
	}
	ins = slices.DeleteFunc(ins, func(i ort.InputOutputInfo) bool { return moved[i.Name] })
	return ins, outs, true
}
