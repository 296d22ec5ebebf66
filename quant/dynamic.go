package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// quantizeDynamic writes dynamic int8: each MatMul with a constant weight
// (Gemm rewritten first) becomes
//
//	x ─DynamicQuantizeLinear─▶ (x_q, s_x, z_x)
//	MatMulInteger(x_q, W_q int8, z_x) ─Cast(float)─▶ Mul(s_x·s_w) ─▶ y
//
// which onnxruntime fuses into MatMulIntegerToFloat. One
// DynamicQuantizeLinear serves all readers of an activation. Convs stay
// float.
func quantizeDynamic(ctx context.Context, m *graph.Model, o *Options, rep *Report) error {
	if v := m.OpsetVersion(""); v < 11 {
		return fmt.Errorf("quant: dynamic: %w: opset %d (DynamicQuantizeLinear needs 11)", ErrUnsupported, v)
	}
	if _, err := GemmToMatMul(m); err != nil {
		return err
	}
	if err := applyRotation(m, o, rep); err != nil {
		return err
	}
	var layers []*Layer
	for _, l := range FindLayers(m, o.Exclude) {
		if l.Op() == "MatMul" {
			layers = append(layers, l)
		} else {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s (%s stays float in dynamic int8)", l.Node.Name(), l.Op()))
		}
	}
	var data *Dataset
	qs, err := quantizeWeights(ctx, m, layers, o, rep, func() (Dataset, error) {
		if data == nil {
			d, err := o.dataset(m, rep)
			if err != nil {
				return Dataset{}, err
			}
			data = &d
		}
		return *data, nil
	})
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
		scales := make([]float32, len(q.Grids))
		for j, g := range q.Grids {
			scales[j] = g.Scale
		}
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
