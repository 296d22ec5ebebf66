package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// dynamicOpset is the first opset with DynamicQuantizeLinear.
const dynamicOpset = 11

// quantizeDynamic writes dynamic int8: each MatMul with a constant weight
// (Gemm rewritten first) becomes
//
//	x ─DynamicQuantizeLinear─▶ (x_q, s_x, z_x)
//	MatMulInteger(x_q, W_q int8, z_x) ─Cast(float)─▶ Mul(s_x·s_w) ─▶ y
//
// which onnxruntime fuses into MatMulIntegerToFloat, and each Conv with a
// constant weight becomes ConvInteger(x_q, W_q int8, z_x) ─Cast─▶
// Mul(s_x·s_w) (+ bias), as onnxruntime's own dynamic quantizer writes
// it. One DynamicQuantizeLinear serves all readers of an activation.
// Older models are upgraded to opset 11 first.
func quantizeDynamic(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if err := raiseOpset(m, dynamicOpset, "DynamicQuantizeLinear", o, rep); err != nil {
		return err
	}
	if _, err := GemmToMatMul(m); err != nil {
		return err
	}
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	layers := pickLayers(m, o, rep, " with a computed bias stays float in dynamic int8", func(l *Layer) bool {
		return l.Op() == "MatMul" || l.Op() == "Conv" && convBiasConstant(m, l)
	})
	qs, err := quantizeWeights(ctx, m, layers, o, rep, o.lazyDataset(m, rep))
	if err != nil {
		return err
	}
	e := newEditor(m)
	dql := map[string][3]string{}
	for i, l := range layers {
		q := qs[i]
		x := l.Input()
		d, ok := dql[x]
		if !ok {
			d = [3]string{e.out(x + "_quantized"), e.out(x + "_scale"), e.out(x + "_zero_point")}
			e.insertBefore(l.Node, e.node("DynamicQuantizeLinear", "", x+"_DynamicQuantizeLinear", []string{x}, d[:]))
			dql[x] = d
		}
		if l.Op() == "Conv" {
			if err := e.emitConvInteger(m, l, q, d); err != nil {
				return err
			}
			continue
		}
		codes := make([]int32, len(q.Q)) // stored [K, N]
		for r := range q.Rows {
			for c := range q.Cols {
				codes[c*q.Rows+r] = q.Q[r*q.Cols+c]
			}
		}
		wq, err := intTensor(l.Weight+"_quantized", onnx.TensorProto_INT8, l.Dims, codes)
		if err != nil {
			return fmt.Errorf("quant: dynamic: layer %s: %w", l.Node, err)
		}
		scales := gridScales(q)
		var sdims []int64
		if len(scales) > 1 {
			sdims = []int64{int64(len(scales))}
		}
		wName, _ := e.sharedInit(l.Weight+"/dynamic/w", func() (*onnx.TensorProto, error) { return wq, nil })
		sName, _ := e.sharedInit(l.Weight+"/dynamic/s", func() (*onnx.TensorProto, error) {
			return graph.FloatTensor(l.Weight+"_scale", sdims, scales), nil
		})
		base := l.Node.Name()
		mi, cast, scale := e.out(base+"_int32"), e.out(base+"_float"), e.out(base+"_scale")
		e.replaceNode(l.Node,
			e.node("MatMulInteger", "", base+"_MatMulInteger", []string{d[0], wName, d[2]}, []string{mi}),
			e.node("Cast", "", base+"_Cast", []string{mi}, []string{cast}, attrInt("to", int64(onnx.TensorProto_FLOAT))),
			e.node("Mul", "", base+"_scales_Mul", []string{d[1], sName}, []string{scale}),
			e.node("Mul", "", base+"_Mul", []string{cast, scale}, []string{l.Node.Output(0)}))
	}
	return e.apply()
}

func gridScales(q *Quantized) []float32 {
	scales := make([]float32, len(q.Grids))
	for j, g := range q.Grids {
		scales[j] = g.Scale
	}
	return scales
}

// convBiasConstant reports whether a Conv has no bias or a constant one
// (the bias is added in float after the integer convolution).
func convBiasConstant(m *graph.Model, l *Layer) bool {
	b := l.Desc.Bias()
	if b == "" {
		return true
	}
	t, ok := m.Graph.Constant(b)
	return ok && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT && len(t.Dims) == 1 && t.Dims[0] == l.Dims[0]
}

// emitConvInteger replaces a Conv by ConvInteger on the dynamically
// quantized input d, with int8 weights (zero point 0, so no weight zero
// point input) and the Conv's own attributes; the int32 result is cast
// to float and scaled by s_x·s_w per output channel, then the bias is
// added.
func (e *editor) emitConvInteger(m *graph.Model, l *Layer, q *Quantized, d [3]string) error {
	wq, err := intTensor(l.Weight+"_quantized", onnx.TensorProto_INT8, l.Dims, q.Q)
	if err != nil {
		return fmt.Errorf("quant: dynamic: layer %s: %w", l.Node, err)
	}
	// Scales and bias broadcast over the output [N, M, spatial...]: shape
	// [M, 1, ...] (one 1 per spatial dim), or a scalar per tensor.
	chanDims := make([]int64, len(l.Dims)-1)
	chanDims[0] = l.Dims[0]
	for i := 1; i < len(chanDims); i++ {
		chanDims[i] = 1
	}
	scales := gridScales(q)
	var sdims []int64
	if len(scales) > 1 {
		sdims = chanDims
	}
	wName, _ := e.sharedInit(l.Weight+"/dynamic/w", func() (*onnx.TensorProto, error) { return wq, nil })
	sName, _ := e.sharedInit(l.Weight+"/dynamic/s", func() (*onnx.TensorProto, error) {
		return graph.FloatTensor(l.Weight+"_scale", sdims, scales), nil
	})
	base := l.Node.Name()
	ci, cast, scale := e.out(base+"_int32"), e.out(base+"_float"), e.out(base+"_scale")
	y := l.Node.Output(0)
	scaled := y
	var bias string
	if b := l.Desc.Bias(); b != "" {
		bt, _ := m.Graph.Constant(b)
		vals, err := graph.Float32s(bt)
		if err != nil {
			return fmt.Errorf("quant: dynamic: layer %s: bias: %w", l.Node, err)
		}
		bias, _ = e.sharedInit(b+"/dynamic/b", func() (*onnx.TensorProto, error) {
			return graph.FloatTensor(b+"_channels", chanDims, vals), nil
		})
		scaled = e.out(base + "_scaled")
	}
	var attrs []*onnx.AttributeProto
	for _, a := range l.Node.Proto.Attribute {
		switch a.GetName() {
		case "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides":
			attrs = append(attrs, a)
		}
	}
	nodes := []*onnx.NodeProto{
		e.node("ConvInteger", "", base+"_ConvInteger", []string{d[0], wName, d[2]}, []string{ci}, attrs...),
		e.node("Cast", "", base+"_Cast", []string{ci}, []string{cast}, attrInt("to", int64(onnx.TensorProto_FLOAT))),
		e.node("Mul", "", base+"_scales_Mul", []string{d[1], sName}, []string{scale}),
		e.node("Mul", "", base+"_Mul", []string{cast, scale}, []string{scaled}),
	}
	if bias != "" {
		nodes = append(nodes, e.node("Add", "", base+"_bias_Add", []string{scaled, bias}, []string{y}))
	}
	e.replaceNode(l.Node, nodes...)
	return nil
}
