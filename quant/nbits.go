package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// msDomain is the domain of onnxruntime's contrib operators.
const msDomain = "com.microsoft"

// emitNBits replaces a MatMul layer by com.microsoft MatMulNBits:
//
//	A ──MatMul(W [K,N])──▶ Y   becomes   A ──MatMulNBits(B, scales[, zero_points])──▶ Y
//
// with B the packed transposed codes of q (rows N, cols K, blocked).
func (e *editor) emitNBits(l *Layer, q *Quantized, accuracyLevel int) error {
	if l.Op() != "MatMul" {
		return fmt.Errorf("quant: matmulnbits: layer %s: %w: only MatMul (rewrite Gemm first)", l.Node, ErrUnsupported)
	}
	nb, err := PackNBits(q)
	if err != nil {
		return fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	key := fmt.Sprintf("%s/nbits%d/%d", l.Weight, nb.Bits, nb.Block)
	bName, _ := e.sharedInit(key+"/B", func() (*onnx.TensorProto, error) {
		dims := []int64{int64(nb.N), int64(nb.Blocks()), int64(nb.blob())}
		return graph.NewTensor(l.Weight+"_q"+fmt.Sprint(nb.Bits), onnx.TensorProto_UINT8, dims, nb.B), nil
	})
	sName, _ := e.sharedInit(key+"/scales", func() (*onnx.TensorProto, error) {
		return graph.FloatTensor(l.Weight+"_scales", []int64{int64(len(nb.Scales))}, nb.Scales), nil
	})
	inputs := []string{l.Input(), bName, sName}
	if nb.Zeros != nil {
		zName, _ := e.sharedInit(key+"/zeros", func() (*onnx.TensorProto, error) {
			return graph.NewTensor(l.Weight+"_zero_points", onnx.TensorProto_UINT8, []int64{int64(len(nb.Zeros))}, nb.Zeros), nil
		})
		inputs = append(inputs, zName)
	}
	e.replaceNode(l.Node, e.node("MatMulNBits", msDomain, l.Node.Name()+"_nbits", inputs, []string{l.Node.Output(0)},
		attrInt("K", int64(nb.K)), attrInt("N", int64(nb.N)), attrInt("bits", int64(nb.Bits)),
		attrInt("block_size", int64(nb.Block)), attrInt("accuracy_level", int64(accuracyLevel))))
	e.require(msDomain, 1)
	return nil
}
