package prune

import (
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Costs. Parameters are the elements of every numeric initializer and
// Constant-node tensor of the main graph that is not an integer shape
// constant nor only a quantization scale or zero point (MatMulNBits' B
// counts as K·N); MACs are the multiply-accumulates of Conv, ConvTranspose,
// Gemm and MatMul with a constant weight: numel(weight) times the weight's
// applications per sample (output positions for Conv, input positions
// for ConvTranspose, rows for Gemm/MatMul), with a batch of one and
// every symbolic dim taken as 1, as graph.Count does (countShape).

type macTerm struct {
	weight string
	factor int64
	node   *graph.Node // the node whose MACs these are
}

// addMAC records a weight's applications per sample; factor < 0 means
// unknown and leaves the term out.
func (a *Analysis) addMAC(n *graph.Node, w string, factor int64) {
	for p := a.g.Producer(w); p != nil && (p.Op() == "DequantizeLinear" || p.Op() == "Identity"); p = a.g.Producer(w) {
		w = p.Input(0)
	}
	if factor > 0 {
		a.macs = append(a.macs, macTerm{w, factor, n})
	}
}

// actTerm is a MatMul of two activations (attention scores QKᵀ and
// context PV): its MACs are the output's elements times the shared axis
// of the first input, each axis shrinking with the labels it carries
// (heads), symbolic axes counted as 1 as graph.Count does.
type actTerm struct {
	x, y   string
	xs, ys []int64 // countShape of x and y
}

// addActMACs records the activation MatMuls, once the labels are known.
func (a *Analysis) addActMACs() {
	for _, n := range a.g.Nodes {
		if n.Op() != "MatMul" || n.Domain() != "" {
			continue
		}
		// A weight behind DequantizeLinear is a parameter too (its MACs
		// are the weight's term).
		c0, c1 := a.isParam(n.Input(0)), a.isParam(n.Input(1))
		if c0 || c1 || len(a.shapes[n.Input(0)]) < 2 || len(a.shapes[n.Output(0)]) < 2 {
			continue
		}
		a.acts = append(a.acts, actTerm{n.Input(0), n.Output(0), a.countShape(n.Input(0)), a.countShape(n.Output(0))})
	}
}

// sizeAfter is the size of axis of v (shape s) once pruned is removed.
func (a *Analysis) sizeAfter(ap *applier, v string, s []int64, axis int) int64 {
	if axis >= len(s) {
		return 1
	}
	return a.sizeAfterDim(ap, v, s[axis], axis)
}

func (a *Analysis) sizeAfterDim(ap *applier, v string, s int64, axis int) int64 {
	if l := a.labels[v][axis]; l != nil && int64(len(l)) == s {
		return int64(countTrue(ap.kept(l)))
	}
	return max(s, 1)
}

func (a *Analysis) actMACs(pruned map[int32]bool) int64 {
	ap := &applier{a: a, pruned: pruned}
	var total int64
	for _, t := range a.acts {
		n := a.sizeAfter(ap, t.x, t.xs, len(t.xs)-1)
		for i := range t.ys {
			n *= a.sizeAfter(ap, t.y, t.ys, i)
		}
		total += n
	}
	return total
}

// Cost is a model size.
type Cost struct {
	Params int64 `json:"params"`
	MACs   int64 `json:"macs"`
	// LatencyUs is the latency model's estimate in microseconds (batch
	// one), with a latency model set (SetLatency) only.
	LatencyUs float64 `json:"latency_us,omitempty"`
}

// Of returns the cost a params, macs or latency target budgets (MACs
// for any other target).
func (c Cost) Of(target string) float64 {
	switch target {
	case "params":
		return float64(c.Params)
	case "latency":
		return c.LatencyUs
	}
	return float64(c.MACs)
}

// tensorDims returns the dims every parameter tensor would have after
// removing the given class roots.
func (a *Analysis) dimsAfter(pruned map[int32]bool) map[string][]int64 {
	ap := &applier{a: a, pruned: pruned}
	out := map[string][]int64{}
	for _, sl := range a.paramSlots(ap) {
		k := sl.param.key
		if k.copy != "" {
			continue // a private copy; costOf counts it
		}
		d, ok := out[k.tensor]
		if !ok {
			t, _ := a.g.Constant(k.tensor)
			d = append([]int64{}, t.Dims...)
			out[k.tensor] = d
		}
		d[k.axis] = int64(countTrue(sl.mask))
	}
	return out
}

// CostOf computes the cost of the model after removing pruned (class
// roots; nil for the model as it is).
func (a *Analysis) costOf(pruned map[int32]bool) Cost {
	dims := a.dimsAfter(pruned)
	var c Cost
	// Shared fills: every reader whose slice changes gets a copy; the
	// original goes when no reader is left on it.
	ap := &applier{a: a, pruned: pruned}
	copies := map[string]int{}
	for _, sl := range a.paramSlots(ap) {
		k := sl.param.key
		if k.copy == "" {
			continue
		}
		if kept := countTrue(sl.mask); kept != len(sl.mask) {
			t, _ := a.g.Constant(k.tensor)
			c.Params += prod(t.Dims) / int64(len(sl.mask)) * int64(kept)
			copies[k.tensor]++
		}
	}
	for _, t := range paramTensors(a.g) {
		d, ok := dims[t.name]
		if !ok {
			d = t.t.Dims
		}
		if n := copies[t.name]; n > 0 && n >= len(a.uses[t.name]) {
			continue
		}
		if nb, ok := a.nbits[t.name]; ok {
			c.Params += nb.weights(ap, d[0])
			continue
		}
		if a.quantAux(t.name) {
			continue
		}
		c.Params += prod(d)
	}
	for _, m := range a.macs {
		d, ok := dims[m.weight]
		if !ok {
			t, found := a.g.Constant(m.weight)
			if !found {
				continue
			}
			d = t.Dims
		}
		if nb, ok := a.nbits[m.weight]; ok {
			c.MACs += nb.weights(ap, d[0]) * m.factor
			continue
		}
		c.MACs += prod(d) * m.factor
	}
	c.MACs += a.actMACs(pruned)
	if a.latency != nil {
		c.LatencyUs = a.latencyOf(dims)
	}
	return c
}

// quantAux reports whether a constant is only read as a quantization
// scale or zero point (QuantizeLinear/DequantizeLinear inputs 1 and 2):
// not a parameter, as graph.Count has it.
func (a *Analysis) quantAux(name string) bool {
	us := a.uses[name]
	for _, u := range us {
		if (u.node.Op() != "QuantizeLinear" && u.node.Op() != "DequantizeLinear") || u.input == 0 {
			return false
		}
	}
	return len(us) > 0
}

// Cost returns the model's cost as analysed.
func (a *Analysis) Cost() Cost { return a.costOf(nil) }

// CostAfter returns the cost the model would have after keeping only the
// given indices (groups not in keep stay whole).
func (a *Analysis) CostAfter(keep map[int][]int) Cost { return a.costOf(a.prunedSet(keep)) }

// paramTensors lists the parameter tensors: float (and quantized) data,
// not int64/int32 shape constants.
type namedTensor struct {
	name string
	t    *onnx.TensorProto
}

func paramTensors(g *graph.Graph) []namedTensor {
	var out []namedTensor
	for _, v := range g.Values() {
		t, ok := g.Constant(v.Name)
		if !ok {
			continue
		}
		switch graph.DataTypeOf(t) {
		case 6, 7, 9: // INT32, INT64, BOOL
			continue
		}
		out = append(out, namedTensor{v.Name, t})
	}
	return out
}

// countShape is v's shape as graph.Count sees it: a symbolic dim is
// evaluated with every symbol taken as 1, so a folded batch·heads axis
// counts its heads and seq·batch its positions (a.shapes has -1 there).
// Unknown dims stay -1; without inferred shapes it is a.shape(v).
func (a *Analysis) countShape(v string) []int64 {
	s := a.shape(v)
	if a.inferred == nil || s == nil {
		return s
	}
	ts, ok := a.inferred.Of(v)
	if !ok || !ts.Ranked || len(ts.Dims) != len(s) {
		return s
	}
	out := append([]int64{}, s...)
	for i, d := range ts.Dims {
		if out[i] >= 0 {
			continue
		}
		if x, ok := d.Eval(1); ok && x > 0 {
			out[i] = x
		}
	}
	return out
}
