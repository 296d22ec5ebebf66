package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// MaxIRVersion is the newest ONNX IR version pare reads. A file that
// claims a newer one was written by a tool pare cannot know the meaning
// of, or lies.
const MaxIRVersion = int64(onnx.Version_IR_VERSION)

// numericOps are operators whose inputs are numbers only; a STRING
// tensor feeding one can come from no exporter and would reach the
// pruning or quantization arithmetic as garbage.
var numericOps = map[string]bool{
	"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true, "MatMulInteger": true,
	"BatchNormalization": true, "InstanceNormalization": true, "LayerNormalization": true,
	"GroupNormalization": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true,
	"PRelu": true, "Relu": true, "Sigmoid": true, "Tanh": true, "Softmax": true, "Sqrt": true,
	"Erf": true, "Gelu": true, "Clip": true, "QuantizeLinear": true, "DequantizeLinear": true,
}

// groupedOps carry a group attribute that must be at least 1.
var groupedOps = map[string]bool{"Conv": true, "ConvTranspose": true}

// checkWellFormed refuses what every command must refuse before any work
// on a model read from outside: an IR version newer than pare knows, a
// graph without outputs, a node without an operator, a STRING tensor
// feeding arithmetic, and a convolution with group < 1.
func checkWellFormed(m *Model) error {
	if v := m.Proto.GetIrVersion(); v > MaxIRVersion {
		return fmt.Errorf("%w: ir_version %d is newer than the newest pare reads (%d)", ErrInvalidModel, v, MaxIRVersion)
	}
	g := m.Graph
	if len(g.Outputs) == 0 {
		return fmt.Errorf("%w: the graph has no outputs", ErrInvalidModel)
	}
	var bad error
	forEachNode(g.Proto, func(n *onnx.NodeProto) {
		if bad == nil && n.GetOpType() == "" {
			bad = fmt.Errorf("%w: node %q has an empty op_type", ErrInvalidModel, n.GetName())
		}
	})
	if bad != nil {
		return bad
	}
	for _, n := range g.Nodes {
		if n.Domain() != "" {
			continue
		}
		if groupedOps[n.Op()] {
			if a := n.Attr("group"); a != nil && a.GetI() < 1 {
				return fmt.Errorf("%w: node %s: group %d (must be at least 1)", ErrInvalidModel, n, a.GetI())
			}
		}
		if !numericOps[n.Op()] {
			continue
		}
		for _, in := range n.Proto.Input {
			t, _ := g.Constant(in)
			if v := g.Value(in); t == nil && v != nil {
				t = v.Initializer
			}
			if t != nil && DataTypeOf(t) == onnx.TensorProto_STRING {
				return fmt.Errorf("%w: node %s: input %q is a STRING tensor", ErrInvalidModel, n, in)
			}
		}
	}
	return nil
}
