package prune

import (
	"slices"

	"github.com/pare-dev/pare/graph"
)

// Latency target. Target "latency" budgets a latency model's estimate
// instead of parameters or MACs: the sum, over the weighted layers the
// MACs count (Conv, ConvTranspose, Gemm, MatMul with a constant weight),
// of each layer's latency at its pruned weight dims, plus the fixed
// latency of everything else. The model comes from outside the package
// (package latency measures it with onnxruntime); pruning itself needs
// no runtime.

// LatencyModel estimates latencies in microseconds.
type LatencyModel interface {
	// Layer returns the latency of layer i (an index into Layers) when
	// its weight has the given dims.
	Layer(i int, dims []int64) float64
	// Rest is the latency of the nodes no layer covers; it does not
	// change with pruning.
	Rest() float64
}

// Layer is one weighted node whose latency a LatencyModel estimates.
type Layer struct {
	Node   *graph.Node
	Weight string  // the weight constant (Identity and DequantizeLinear followed)
	Dims   []int64 // the weight's dims before pruning
	// Data is the input of Node that is not the weight, and DataShape
	// its shape with unknown and symbolic dims as 1 (batch one).
	Data      string
	DataShape []int64
}

// Layers lists the weighted layers in the order LatencyModel.Layer
// numbers them.
func (a *Analysis) Layers() []Layer {
	out := make([]Layer, 0, len(a.macs))
	for _, m := range a.macs {
		l := Layer{Node: m.node, Weight: m.weight}
		if t, ok := a.g.Constant(m.weight); ok {
			l.Dims = slices.Clone(t.Dims)
		}
		for i, in := range m.node.Proto.Input {
			if i > 1 || in == "" || a.isParam(in) {
				continue
			}
			l.Data = in
			for _, d := range a.countShape(in) {
				l.DataShape = append(l.DataShape, max(d, 1))
			}
			break
		}
		out = append(out, l)
	}
	return out
}

// SetLatency sets the model that Cost and CostAfter use for LatencyUs
// and that Select budgets with Target "latency".
func (a *Analysis) SetLatency(m LatencyModel) { a.latency = m }

// latencyOf sums the latency model over the layers at the weight dims
// after pruning (dims: pruned tensors only).
func (a *Analysis) latencyOf(dims map[string][]int64) float64 {
	total := a.latency.Rest()
	for i, m := range a.macs {
		d, ok := dims[m.weight]
		if !ok {
			t, found := a.g.Constant(m.weight)
			if !found {
				continue
			}
			d = t.Dims
		}
		total += a.latency.Layer(i, d)
	}
	return total
}
