package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// qdq4Opset is the first opset whose DequantizeLinear takes INT4/UINT4
// and block_size.
const qdq4Opset = 21

// emitQDQ4 rewrites a MatMul layer with a blocked 4-bit weight as
//
//	W_q INT4|UINT4 [K,N] ─┐
//	scales [⌈K/bs⌉,N] ────┼─ DequantizeLinear(axis=0, block_size=bs) ─▶ W
//	[zero UINT4] ─────────┘                                              │
//	A ─────────────────────────────────────────────────────── MatMul ◀──┘
//
// Symmetric codes are stored as INT4 without zero points. The model must
// already be at opset 21 (upgradeOpset).
func (e *editor) emitQDQ4(l *Layer, q *Quantized) error {
	if l.Desc.Spatial {
		return e.emitQDQ4Conv(l, q)
	}
	if l.Op() != "MatMul" {
		return fmt.Errorf("quant: qdq4: layer %s: %w: only MatMul", l.Node, ErrUnsupported)
	}
	if q.Scheme.Bits != 4 || !q.Gran.IsPerBlock() {
		return fmt.Errorf("quant: qdq4: layer %s: %w: %v %v (want 4-bit blocks)", l.Node, ErrUnsupported, q.Scheme, q.Gran)
	}
	k, n, blocks := q.Cols, q.Rows, q.Blocks()
	codes := make([]int32, k*n)
	for r := range n {
		for c := range k {
			codes[c*n+r] = q.Q[r*k+c]
		}
	}
	scales := make([]float32, blocks*n)
	zeros := make([]int32, blocks*n)
	for r := range n {
		for j := range blocks {
			g := q.Grids[r*blocks+j]
			scales[j*n+r], zeros[j*n+r] = g.Scale, g.Zero
		}
	}
	key := fmt.Sprintf("%s/qdq4/%d", l.Weight, q.Gran.Block)
	wName, err := e.sharedInit(key+"/w", func() (*onnx.TensorProto, error) {
		return Int4Tensor(l.Weight+"_q4", []int64{int64(k), int64(n)}, codes, q.Scheme.Signed())
	})
	if err != nil {
		return fmt.Errorf("quant: qdq4: layer %s: %w", l.Node, err)
	}
	sName, _ := e.sharedInit(key+"/scales", func() (*onnx.TensorProto, error) {
		return graph.FloatTensor(l.Weight+"_scales", []int64{int64(blocks), int64(n)}, scales), nil
	})
	inputs := []string{wName, sName}
	if !q.Scheme.Symmetric {
		zName, err := e.sharedInit(key+"/zeros", func() (*onnx.TensorProto, error) {
			return Int4Tensor(l.Weight+"_zero_points", []int64{int64(blocks), int64(n)}, zeros, false)
		})
		if err != nil {
			return fmt.Errorf("quant: qdq4: layer %s: %w", l.Node, err)
		}
		inputs = append(inputs, zName)
	}
	deq := e.out(l.Weight + "_dq")
	dq := e.node("DequantizeLinear", "", l.Node.Name()+"_weight_dq", inputs, []string{deq},
		attrInt("axis", 0), attrInt("block_size", int64(q.Gran.Block)))
	mm := e.node("MatMul", "", l.Node.Name(), []string{l.Input(), deq}, []string{l.Node.Output(0)})
	e.replaceNode(l.Node, dq, mm)
	return nil
}

// emitQDQ4Conv feeds a Conv a 4-bit weight per output channel:
//
//	W_q INT4|UINT4 [O, I/g, kh, kw] ─┐
//	scales [O] ──────────────────────┼─ DequantizeLinear(axis=0) ─▶ Conv
//	[zero UINT4 [O]] ────────────────┘
func (e *editor) emitQDQ4Conv(l *Layer, q *Quantized) error {
	if q.Scheme.Bits != 4 || !q.Gran.IsPerChannel() {
		return fmt.Errorf("quant: qdq4: layer %s: %w: %v %v (want 4-bit per channel)", l.Node, ErrUnsupported, q.Scheme, q.Gran)
	}
	o := q.Rows
	scales := make([]float32, o)
	zeros := make([]int32, o)
	for r := range o {
		g := q.Grids[q.GridIndex(r, 0)]
		scales[r], zeros[r] = g.Scale, g.Zero
	}
	key := l.Weight + "/qdq4/conv"
	wName, err := e.sharedInit(key+"/w", func() (*onnx.TensorProto, error) {
		return Int4Tensor(l.Weight+"_q4", l.Dims, q.Q, q.Scheme.Signed())
	})
	if err != nil {
		return fmt.Errorf("quant: qdq4: layer %s: %w", l.Node, err)
	}
	sName, _ := e.sharedInit(key+"/scales", func() (*onnx.TensorProto, error) {
		return graph.FloatTensor(l.Weight+"_scales", []int64{int64(o)}, scales), nil
	})
	inputs := []string{wName, sName}
	if !q.Scheme.Symmetric {
		zName, err := e.sharedInit(key+"/zeros", func() (*onnx.TensorProto, error) {
			return Int4Tensor(l.Weight+"_zero_points", []int64{int64(o)}, zeros, false)
		})
		if err != nil {
			return fmt.Errorf("quant: qdq4: layer %s: %w", l.Node, err)
		}
		inputs = append(inputs, zName)
	}
	deq := e.out(l.Weight + "_dq")
	e.insertBefore(l.Node, e.node("DequantizeLinear", "", l.Node.Name()+"_weight_dq", inputs, []string{deq}, attrInt("axis", 0)))
	l.Node.Proto.Input[1] = deq
	return nil
}
