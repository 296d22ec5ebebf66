package graph

import (
	"github.com/pare-dev/pare/onnx"
)

// slotKind says what an operator input holds, for counting parameters.
type slotKind uint8

const (
	slotOther    slotKind = iota // activations, shape arguments, ...
	slotWeight                   // a float weight (Conv W, BN scale, ...)
	slotQWeight                  // an integer weight that is dequantized
	slotQuantAux                 // a quantization scale or zero point, or Resize scales/roi
)

// inputSlot classifies input i of n.
func inputSlot(n *Node, i int) slotKind {
	op := n.Op()
	if n.Domain() == msDomain {
		switch op {
		case "MatMulNBits":
			switch i {
			case 1:
				return slotQWeight
			case 2, 3, 4:
				return slotQuantAux
			case 5:
				return slotWeight // bias
			}
		case "QuantizeLinear", "DequantizeLinear":
			return qdqSlot(op, i)
		}
		return slotOther
	}
	switch op {
	case "Conv", "ConvTranspose":
		return slotIf(i >= 1)
	case "Gemm", "MatMul", "Einsum":
		return slotWeight
	case "BatchNormalization", "InstanceNormalization", "LayerNormalization",
		"GroupNormalization", "RMSNormalization", "PRelu":
		return slotIf(i >= 1)
	case "LSTM", "GRU", "RNN":
		return slotIf(i >= 1 && i <= 3)
	case "Gather":
		return slotIf(i == 0) // embedding tables
	case "QuantizeLinear", "DequantizeLinear":
		return qdqSlot(op, i)
	case "MatMulInteger", "ConvInteger":
		switch i {
		case 0, 1:
			return slotQWeight
		}
		return slotQuantAux
	case "QLinearConv", "QLinearMatMul":
		switch i {
		case 0, 3:
			return slotQWeight
		case 8:
			return slotWeight // QLinearConv's int32 bias
		}
		return slotQuantAux
	case "Resize":
		return quantAuxIf(i == 1 || i == 2)
	case "Upsample":
		return quantAuxIf(i == 1)
	}
	return slotOther
}

func qdqSlot(op string, i int) slotKind {
	switch {
	case i > 0:
		return slotQuantAux
	case op == "DequantizeLinear":
		return slotQWeight
	}
	return slotOther
}

func slotIf(b bool) slotKind {
	if b {
		return slotWeight
	}
	return slotOther
}

func quantAuxIf(b bool) slotKind {
	if b {
		return slotQuantAux
	}
	return slotOther
}

// paramTensors returns the parameter tensors by name, with their element
// counts.
func paramTensors(g *Graph) map[string]int64 {
	out := map[string]int64{}
	for _, v := range g.Values() {
		var t *onnx.TensorProto
		var dims []int64
		fromConstantNode := false
		switch {
		case v.Initializer != nil:
			t, dims = v.Initializer, v.Initializer.Dims
		case v.Sparse != nil:
			t, dims = v.Sparse.GetValues(), v.Sparse.Dims
		case v.Producer != nil && v.Producer.Op() == "Constant" && v.Producer.Domain() == "":
			ct, err := ConstantNodeTensor(v.Producer.Proto)
			if err != nil {
				continue
			}
			t, dims, fromConstantNode = ct, ct.Dims, true
		default:
			continue
		}
		n, ok := paramElems(v, DataTypeOf(t), dims, fromConstantNode)
		if ok {
			out[v.Name] = n
		}
	}
	return out
}

// paramElems decides whether a constant tensor is a parameter and how
// many elements it counts for:
//   - a float initializer is a parameter unless every use is a
//     quantization scale or zero point (or Resize scales);
//   - a float Constant-node tensor is one only when some node reads it as
//     a weight;
//   - an integer tensor is one only when it is a quantized weight
//     (DequantizeLinear input, MatMulNBits B counted as K·N, ...).
func paramElems(v *Value, dt DataType, dims []int64, fromConstantNode bool) (int64, bool) {
	n, err := NumElements(dims)
	if err != nil {
		return 0, false
	}
	weight, qweight, aux, other := false, false, false, false
	for _, c := range v.Consumers {
		for i, in := range c.Proto.Input {
			if in != v.Name {
				continue
			}
			switch inputSlot(c, i) {
			case slotWeight:
				weight = true
			case slotQWeight:
				qweight = true
				if c.Op() == "MatMulNBits" && i == 1 {
					n = satMul(c.IntAttr("K", 0), c.IntAttr("N", 0))
				}
			case slotQuantAux:
				aux = true
			default:
				other = true
			}
		}
	}
	switch {
	case IsFloat(dt) && fromConstantNode:
		return n, weight || qweight
	case IsFloat(dt):
		return n, !aux || weight || qweight || other
	case isIntType(dt) && dt != onnx.TensorProto_BOOL:
		return n, qweight
	}
	return 0, false
}
