package importance

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
)

// FLAP scores an input channel of a layer y = W x by its fluctuation over
// the calibration data, Var(x_j)·‖W_{:,j}‖² (An et al., FLAP): a channel
// that barely varies carries little beyond its mean, and its mean can be
// put back as a bias. A group index sums this over its columns in every
// consumer layer (a head: its head_dim columns of the output projection;
// an MLP channel: its column of the down projection); member scores are
// divided by their mean and averaged, as for wanda. Groups without a
// consumer layer with statistics fall back to magnitude (L1), with a note.
//
// Compensate adds the removed channels' mean contribution W_{:,Q}·E[x_Q]
// to each consumer's bias (creating one when the layer has none), so the
// pruned model's output keeps its mean.
type FLAP struct {
	Notes []string

	layers map[string]*calib.Layer
	mean   map[string][]float64
	vari   map[string][]float64
	w      map[string][]float64
}

// NewFLAP collects per-column means and variances of the inputs of every
// layer that consumes a prunable group's channels.
func NewFLAP(ctx context.Context, m *graph.Model, an *prune.Analysis, d Data) (*FLAP, error) {
	f := &FLAP{layers: consumerLayers(an, false), mean: map[string][]float64{}, vari: map[string][]float64{}, w: map[string][]float64{}}
	sum, sq, n := map[string][]float64{}, map[string][]float64{}, map[string]float64{}
	for k, l := range f.layers {
		sum[k], sq[k] = make([]float64, l.In()), make([]float64, l.In())
	}
	err := captureLayerInputs(ctx, m, d, f.layers, func(k string, l *calib.Layer, rows []float64) error {
		in, s, q := l.In(), sum[k], sq[k]
		for r := 0; r+in <= len(rows); r += in {
			for j, x := range rows[r : r+in] {
				s[j] += x
				q[j] += x * x
			}
			n[k]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, l := range f.layers {
		if n[k] == 0 {
			continue
		}
		mu, v := make([]float64, l.In()), make([]float64, l.In())
		for j := range mu {
			mu[j] = sum[k][j] / n[k]
			v[j] = max(sq[k][j]/n[k]-mu[j]*mu[j], 0)
		}
		f.mean[k], f.vari[k] = mu, v
		if f.w[k], err = l.Matrix(m.Graph); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Name implements Scorer.
func (*FLAP) Name() string { return "flap" }

// Score implements Scorer.
func (f *FLAP) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	total := make([]float64, grp.Size)
	count := make([]int, grp.Size)
	for _, mem := range grp.Members {
		l := f.layers[mem.Node]
		if mem.Kind != prune.KindWeightIn || l == nil || f.vari[mem.Node] == nil || mem.Axis != l.InAxis() || l.Weight != mem.Tensor {
			continue
		}
		w, v, out, in := f.w[mem.Node], f.vari[mem.Node], l.Out(), l.In()
		s := make([]float64, grp.Size)
		for i := range s {
			s[i] = math.NaN()
		}
		for p, idx := range mem.Map {
			if idx < 0 || idx >= grp.Size {
				continue
			}
			if math.IsNaN(s[idx]) {
				s[idx] = 0
			}
			for _, c := range l.Columns([]int{p}) {
				norm := 0.0
				for r := range out {
					norm += w[r*in+c] * w[r*in+c]
				}
				s[idx] += v[c] * norm
			}
		}
		addNormalised(total, count, s)
	}
	covered := false
	for i := range total {
		if count[i] > 0 {
			total[i] /= float64(count[i])
			covered = true
		}
	}
	if !covered {
		f.Notes = append(f.Notes, fmt.Sprintf("group %d (%s): no consumer layer with statistics, scored by magnitude", grp.ID, grp.Name))
		return Magnitude{P: 1}.Score(g, grp)
	}
	return total, nil
}

// biasShift is one layer's compensation: added to its output channels
// that the plan keeps.
type biasShift struct {
	layer *calib.Layer
	delta []float64
}

// Shifts computes, before the plan is applied (the columns are still
// there), W_{:,Q}·E[x_Q] for the input columns Q the plan removes from
// each consumer layer, restricted to the output channels it keeps.
func (f *FLAP) Shifts(p *prune.Plan) []biasShift {
	var out []biasShift
	for _, k := range sortedNames(f.mean) {
		l := f.layers[k]
		kept := prune.KeptPositions(p, l.Weight, l.InAxis(), int(l.Dims[l.InAxis()]))
		w, mu, rows, in := f.w[k], f.mean[k], l.Out(), l.In()
		delta := make([]float64, rows)
		any := false
		for pos, ok := range kept {
			if ok {
				continue
			}
			any = true
			for _, c := range l.Columns([]int{pos}) {
				for r := range rows {
					delta[r] += w[r*in+c] * mu[c]
				}
			}
		}
		if !any {
			continue
		}
		keptOut := prune.KeptPositions(p, l.Weight, l.OutAxis(), rows)
		var d []float64
		for r, ok := range keptOut {
			if ok {
				d = append(d, delta[r])
			}
		}
		out = append(out, biasShift{layer: l, delta: d})
	}
	return out
}

// Compensate adds each shift to its layer's bias in the pruned model:
// Gemm and Conv take it in their bias input (created when absent);
// a MatMul in the constant of the Add that follows it, or in a new Add.
// A bias constant that other nodes also read gets a copy of its own.
func Compensate(m *graph.Model, shifts []biasShift) (int, error) {
	g := m.Graph
	for _, s := range shifts {
		var n *graph.Node
		for _, c := range g.Nodes {
			if c.Name() == s.layer.Node.Name() {
				n = c
			}
		}
		if n == nil {
			return 0, fmt.Errorf("importance: flap: layer %s not found after pruning", s.layer.Node.Name())
		}
		if err := addBias(g, n, s.delta); err != nil {
			return 0, fmt.Errorf("importance: flap: node %q (%s): %w", n.Name(), n.Op(), err)
		}
	}
	if err := g.Reindex(); err != nil {
		return 0, err
	}
	return len(shifts), nil
}

func addBias(g *graph.Graph, n *graph.Node, delta []float64) error {
	out := int64(len(delta))
	d, weighted := graph.WeightedOf(n)
	switch {
	case weighted && d.HasBiasInput():
		if d.Bias() == "" {
			name := uniqueName(g, n.Name()+".flap_bias")
			g.Proto.Initializer = append(g.Proto.Initializer, graph.FloatTensor(name, []int64{out}, toFloat32(delta)))
			for len(n.Proto.Input) < d.BiasInput {
				n.Proto.Input = append(n.Proto.Input, "")
			}
			n.Proto.Input = append(n.Proto.Input[:d.BiasInput], name)
			return nil
		}
		return shiftConst(g, n, d.BiasInput, delta)
	case weighted: // MatMul: no bias operand
		y := n.Output(0)
		if cs := g.Consumers(y); len(cs) == 1 && cs[0].Op() == "Add" && !isGraphOutput(g, y) {
			add := cs[0]
			other := 1
			if add.Input(1) == y {
				other = 0
			}
			if t, ok := g.Constant(add.Input(other)); ok && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT && numel(t.Dims) == out && t.Dims[len(t.Dims)-1] == out {
				return shiftConst(g, add, other, delta)
			}
		}
		// No bias: y = MatMul(x, W) becomes y = Add(MatMul(x, W), b).
		raw := uniqueName(g, y+".nobias")
		name := uniqueName(g, n.Name()+".flap_bias")
		n.Proto.Output[0] = raw
		g.Proto.Initializer = append(g.Proto.Initializer, graph.FloatTensor(name, []int64{out}, toFloat32(delta)))
		addNode := &onnx.NodeProto{Name: ptr(uniqueName(g, n.Name()+".flap_bias_add")), OpType: ptr("Add"), Input: []string{raw, name}, Output: []string{y}}
		nodes := g.Proto.Node
		at := 0
		for i, p := range nodes {
			if p == n.Proto {
				at = i + 1
			}
		}
		g.Proto.Node = append(nodes[:at:at], append([]*onnx.NodeProto{addNode}, nodes[at:]...)...)
		return nil
	}
	return fmt.Errorf("no bias to compensate into")
}

// shiftConst adds delta to the float constant read at input i of n,
// copying it first when other nodes read it too.
func shiftConst(g *graph.Graph, n *graph.Node, i int, delta []float64) error {
	name := n.Input(i)
	t, ok := g.Constant(name)
	if !ok || graph.DataTypeOf(t) != onnx.TensorProto_FLOAT {
		return fmt.Errorf("bias %q is not a constant float tensor", name)
	}
	v, err := graph.Float32s(t)
	if err != nil {
		return err
	}
	if len(v) != len(delta) {
		return fmt.Errorf("bias %q has %d values for %d output channels", name, len(v), len(delta))
	}
	nv := make([]float32, len(v))
	for j := range v {
		nv[j] = v[j] + float32(delta[j])
	}
	if len(g.Consumers(name)) == 1 && g.Initializer(name) != nil {
		return graph.SetFloat32s(t, t.Dims, nv)
	}
	copyName := uniqueName(g, name+".flap")
	g.Proto.Initializer = append(g.Proto.Initializer, graph.FloatTensor(copyName, t.Dims, nv))
	n.Proto.Input[i] = copyName
	return nil
}

func isGraphOutput(g *graph.Graph, name string) bool {
	for _, o := range g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func uniqueName(g *graph.Graph, base string) string {
	name := base
	for i := 1; g.Value(name) != nil || hasInitializer(g, name); i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

func hasInitializer(g *graph.Graph, name string) bool {
	for _, t := range g.Proto.Initializer {
		if t.GetName() == name {
			return true
		}
	}
	return false
}

func ptr(s string) *string { return &s }
