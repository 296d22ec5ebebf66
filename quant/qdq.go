package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// qdqOpset is the first opset whose QuantizeLinear/DequantizeLinear take
// an axis (per-channel weights); per-tensor QDQ needs qdqMinOpset, where
// they appeared.
const (
	qdqOpset    = 13
	qdqMinOpset = 10
)

// Ops whose output takes its input's grid: they only move or select
// values, so onnxruntime drops the DequantizeLinear→op→QuantizeLinear
// around them and runs them on uint8.
var sameGridOps = map[string]bool{
	"MaxPool": true, "Reshape": true, "Flatten": true, "Transpose": true,
	"Squeeze": true, "Unsqueeze": true, "Identity": true, "Slice": true,
}

// Ops with their own output grid, quantized when all their float inputs
// are: onnxruntime has integer kernels for them (QLinearAdd, QLinearMul,
// QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool).
var ownGridOps = map[string]bool{
	"Add": true, "Mul": true, "Concat": true, "AveragePool": true, "GlobalAveragePool": true,
}

// Unary ops with their own output grid, quantized when their input is:
// onnxruntime fuses DequantizeLinear→Sigmoid→QuantizeLinear into
// QLinearSigmoid, which lets the Mul of SiLU (x·σ(x)) and of
// squeeze-excitation run as QLinearMul too. Left float, each such block
// dequantized and requantized a full feature map, and EfficientNet-B0
// ran slower quantized than float.
var unaryGridOps = map[string]bool{"Sigmoid": true}

// qdqPlan says which activations get a QuantizeLinear→DequantizeLinear
// pair and where their grids come from.
type qdqPlan struct {
	layers []*Layer
	// own lists the tensors calibrated for their own grid, in order.
	own []string
	// same maps a tensor to the tensor whose grid it shares.
	same map[string]string
	// marked holds every tensor of own and same.
	marked map[string]bool
	// folds maps a Relu (or Clip at 0) to the producer it is folded into:
	// the producer then writes the Relu's output, and the uint8 grid with
	// zero point 0 does the clipping (onnxruntime's quantizer does the
	// same).
	folds map[*graph.Node]*graph.Node
}

// planQDQ walks m in topological order and decides what to quantize.
func planQDQ(m *graph.Model, layers []*Layer) *qdqPlan {
	p := &qdqPlan{layers: layers, same: map[string]string{}, marked: map[string]bool{}, folds: map[*graph.Node]*graph.Node{}}
	isLayer := map[*graph.Node]bool{}
	for _, l := range layers {
		isLayer[l.Node] = true
	}
	own := func(t string) {
		if t != "" && !p.marked[t] {
			p.marked[t] = true
			p.own = append(p.own, t)
		}
	}
	foldable := map[string]*graph.Node{} // own outputs of layers and own-grid ops
	for _, n := range m.Graph.Nodes {
		if n.Domain() != "" {
			continue
		}
		op := n.Op()
		switch {
		case isLayer[n]:
			own(n.Input(0))
			own(n.Output(0))
			foldable[n.Output(0)] = n
		case op == "Relu" || (op == "Clip" && clipsAtZero(m, n)):
			in := n.Input(0)
			if !p.marked[in] {
				continue
			}
			v := m.Graph.Value(in)
			if prod := foldable[in]; prod != nil && len(v.Consumers) == 1 && !v.IsOutput && p.same[in] == "" {
				p.folds[n] = prod
				p.own[slices.Index(p.own, in)] = n.Output(0)
				delete(p.marked, in)
				p.marked[n.Output(0)] = true
				continue
			}
			own(n.Output(0))
		case sameGridOps[op]:
			in := n.Input(0)
			if !p.marked[in] {
				continue
			}
			src := in
			if s := p.same[in]; s != "" {
				src = s
			}
			for _, o := range n.Proto.Output {
				if o != "" && !p.marked[o] {
					p.marked[o] = true
					p.same[o] = src
				}
			}
		case unaryGridOps[op]:
			if p.marked[n.Input(0)] {
				own(n.Output(0))
			}
		case ownGridOps[op]:
			all := true
			for _, in := range n.Proto.Input {
				if in == "" {
					continue
				}
				if _, isConst := m.Graph.Constant(in); isConst || !p.marked[in] {
					all = false
				}
			}
			if all && len(n.Proto.Input) > 0 {
				own(n.Output(0))
				foldable[n.Output(0)] = n
			}
		}
	}
	p.dropUnreadMatMulOutputs(m, isLayer)
	return p
}

// dropUnreadMatMulOutputs leaves float the output of a MatMul or Gemm
// layer that nothing reads in quantized form (a bias Add with a float
// constant, LayerNorm, Softmax, a graph output…): onnxruntime then runs
// DequantizeLinear→MatMul as MatMulIntegerToFloat and Gemm as QGemm with
// a float output, instead of QLinearMatMul followed by a DequantizeLinear
// whose QuantizeLinear bought nothing (a transformer's linear layers were
// slower than float that way), and it no longer misses Gemms whose
// output went on through Reshape/Transpose pairs (the ViT attention
// projections stayed float). Convs keep their output pair: without it
// onnxruntime has no integer kernel.
func (p *qdqPlan) dropUnreadMatMulOutputs(m *graph.Model, isLayer map[*graph.Node]bool) {
	var readQuantized func(t string, depth int) bool
	readQuantized = func(t string, depth int) bool {
		if depth > 32 {
			return true
		}
		for _, c := range m.Graph.Consumers(t) {
			switch {
			case isLayer[c] && c.Input(0) == t:
				return true
			case p.folds[c] != nil:
				return true
			case (ownGridOps[c.Op()] || unaryGridOps[c.Op()]) && slices.Contains(p.own, c.Output(0)):
				return true
			case sameGridOps[c.Op()] && p.marked[c.Output(0)] && readQuantized(c.Output(0), depth+1):
				return true
			}
		}
		return false
	}
	for _, l := range p.layers {
		t := l.Node.Output(0)
		if l.Desc.Spatial || !slices.Contains(p.own, t) || readQuantized(t, 0) {
			continue
		}
		p.own = slices.DeleteFunc(p.own, func(s string) bool { return s == t })
		delete(p.marked, t)
		for o, src := range p.same {
			if src == t {
				delete(p.same, o)
				delete(p.marked, o)
			}
		}
	}
}

// clipsAtZero reports whether a Clip's lower bound is the constant 0 (a
// ReLU6-style Clip).
func clipsAtZero(m *graph.Model, n *graph.Node) bool {
	if m.OpsetVersion("") < 11 {
		return n.FloatAttr("min", float32(math.Inf(-1))) == 0
	}
	t, ok := m.Graph.Constant(n.Input(1))
	if !ok {
		return false
	}
	v, err := graph.Float32s(t)
	return err == nil && len(v) == 1 && v[0] == 0
}

// qdqEmitter writes a plan into the graph.
type qdqEmitter struct {
	e     *editor
	plan  *qdqPlan
	grids map[string]Grid // own tensor → activation grid
	// params caches the scale and zero point initializers of a grid
	// source tensor.
	params map[string][2]string
}

// source returns the tensor whose grid t uses.
func (q *qdqEmitter) source(t string) string {
	if s := q.plan.same[t]; s != "" {
		return s
	}
	return t
}

// gridOf returns the activation grid of a marked tensor.
func (q *qdqEmitter) gridOf(t string) Grid { return q.grids[q.source(t)] }

// actParams returns the scale and zero point initializers for t's grid.
func (q *qdqEmitter) actParams(t string) (string, string) {
	src := q.source(t)
	if p, ok := q.params[src]; ok {
		return p[0], p[1]
	}
	g := q.grids[src]
	s := q.e.init(graph.FloatTensor(src+"_scale", nil, []float32{g.Scale}))
	z := q.e.init(graph.NewTensor(src+"_zero_point", onnx.TensorProto_UINT8, nil, []byte{byte(g.Zero)}))
	q.params[src] = [2]string{s, z}
	return s, z
}

// emitActivations inserts Q→DQ after every marked tensor. A tensor made
// by a node is renamed at its producer so that all readers, graph outputs
// included, see the quantized value; a graph input gets new readers.
func (q *qdqEmitter) emitActivations(m *graph.Model) error {
	order := append([]string{}, q.plan.own...)
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Proto.Output {
			if q.plan.same[o] != "" {
				order = append(order, o)
			}
		}
	}
	for _, t := range order {
		v := m.Graph.Value(t)
		if v == nil {
			return fmt.Errorf("quant: qdq: tensor %q vanished", t)
		}
		s, z := q.actParams(t)
		if p := v.Producer; p != nil {
			fl := q.e.out(t + "_float")
			for i, o := range p.Proto.Output {
				if o == t {
					p.Proto.Output[i] = fl
				}
			}
			tq := q.e.out(t + "_quantized")
			nodes := append(q.e.replace[p.Proto], q.e.node("QuantizeLinear", "", t+"_QuantizeLinear", []string{fl, s, z}, []string{tq}),
				q.e.node("DequantizeLinear", "", t+"_DequantizeLinear", []string{tq, s, z}, []string{t}))
			if _, replaced := q.e.replace[p.Proto]; !replaced {
				nodes = append([]*onnx.NodeProto{p.Proto}, nodes...)
			}
			q.e.replace[p.Proto] = nodes
			// Shape reads no values: from the float tensor it leaves the
			// pair to its one real reader, so onnxruntime can fuse it.
			for _, c := range v.Consumers {
				if c.Op() == "Shape" && c.Domain() == "" {
					c.Proto.Input[0] = fl
				}
			}
			continue
		}
		if !v.IsInput {
			continue // constants are not activations
		}
		tq, td := q.e.out(t+"_quantized"), q.e.out(t+"_dequantized")
		first := m.Graph.Nodes[0]
		q.e.insertBefore(first,
			q.e.node("QuantizeLinear", "", t+"_QuantizeLinear", []string{t, s, z}, []string{tq}),
			q.e.node("DequantizeLinear", "", t+"_DequantizeLinear", []string{tq, s, z}, []string{td}))
		for _, c := range v.Consumers {
			for i, in := range c.Proto.Input {
				if in == t {
					c.Proto.Input[i] = td
				}
			}
		}
	}
	return nil
}

// weightAxis returns the axis of the stored weight that indexes output
// channels.
func (l *Layer) weightAxis() int64 { return int64(l.Desc.OutAxis) }

// emitWeight replaces the layer's weight (and bias, for Conv and Gemm)
// by DequantizeLinear of int8 codes: per channel along the output axis,
// or per tensor; the bias as int32 with scale s_x·s_w and zero point 0.
func (q *qdqEmitter) emitWeight(m *graph.Model, l *Layer, w *Quantized) error {
	e := q.e
	codes := w.Q
	if l.transposed() {
		codes = make([]int32, len(w.Q))
		for r := range w.Rows {
			for c := range w.Cols {
				codes[c*w.Rows+r] = w.Q[r*w.Cols+c]
			}
		}
	}
	wq, err := intTensor(l.Weight+"_quantized", onnx.TensorProto_INT8, l.Dims, codes)
	if err != nil {
		return fmt.Errorf("quant: qdq: layer %s: %w", l.Node, err)
	}
	scales := make([]float32, len(w.Grids))
	for i, g := range w.Grids {
		scales[i] = g.Scale
	}
	var dims []int64
	var attrs []*onnx.AttributeProto
	if !w.Gran.IsPerTensor() {
		dims = []int64{int64(len(scales))}
		attrs = append(attrs, attrInt("axis", l.weightAxis()))
	}
	wqName := e.init(wq)
	sName := e.init(graph.FloatTensor(l.Weight+"_scale", dims, scales))
	zName := e.init(graph.NewTensor(l.Weight+"_zero_point", onnx.TensorProto_INT8, dims, make([]byte, len(scales))))
	wdq := e.out(l.Weight + "_dequantized")
	nodes := []*onnx.NodeProto{e.node("DequantizeLinear", "", l.Weight+"_DequantizeLinear", []string{wqName, sName, zName}, []string{wdq}, attrs...)}
	l.Node.Proto.Input[1] = wdq

	if b := l.Desc.Bias(); b != "" {
		if bt, ok := m.Graph.Constant(b); ok && len(bt.Dims) == 1 && int(bt.Dims[0]) == w.Rows {
			bias, err := graph.Float32s(bt)
			if err != nil {
				return fmt.Errorf("quant: qdq: layer %s: bias: %w", l.Node, err)
			}
			sx := q.gridOf(l.Input()).Scale
			bq := make([]int32, len(bias))
			bs := make([]float32, len(bias))
			ok := true
			for i, v := range bias {
				ws := scales[0]
				if !w.Gran.IsPerTensor() {
					ws = scales[i]
				}
				bs[i] = sx * ws
				if !(bs[i] > 0) || !finite(v) {
					ok = false
					break
				}
				r := math.RoundToEven(float64(v) / float64(bs[i]))
				bq[i] = int32(max(math.MinInt32, min(math.MaxInt32, r)))
			}
			if ok {
				bqt, _ := intTensor(b+"_quantized", onnx.TensorProto_INT32, bt.Dims, bq)
				bqName := e.init(bqt)
				// Per-tensor weights give one bias scale: a scalar grid
				// without axis, which DequantizeLinear takes before 13.
				sdims, bscales, battrs := bt.Dims, bs, []*onnx.AttributeProto{attrInt("axis", 0)}
				if w.Gran.IsPerTensor() {
					sdims, bscales, battrs = nil, bs[:1], nil
				}
				bsName := e.init(graph.FloatTensor(b+"_scale", sdims, bscales))
				bzName := e.init(graph.NewTensor(b+"_zero_point", onnx.TensorProto_INT32, sdims, make([]byte, 4*len(bscales))))
				bdq := e.out(b + "_dequantized")
				nodes = append(nodes, e.node("DequantizeLinear", "", b+"_DequantizeLinear", []string{bqName, bsName, bzName}, []string{bdq}, battrs...))
				l.Node.Proto.Input[2] = bdq
			}
		}
	}
	e.insertBefore(l.Node, nodes...)
	return nil
}

// applyFolds removes folded Relus: their producer writes the Relu's
// output directly.
func (p *qdqPlan) applyFolds(m *graph.Model) error {
	if len(p.folds) == 0 {
		return nil
	}
	gone := map[*onnx.NodeProto]bool{}
	for relu, prod := range p.folds {
		prod.Proto.Output[0] = relu.Output(0)
		gone[relu.Proto] = true
	}
	gp := m.Proto.Graph
	gp.Node = slices.DeleteFunc(gp.Node, func(n *onnx.NodeProto) bool { return gone[n] })
	if err := m.Graph.Reindex(); err != nil {
		return fmt.Errorf("quant: qdq: %w", err)
	}
	return nil
}
