package recovery

import (
	"context"
	"fmt"
	"math"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// RecalibrateBN repairs the activation statistics of a pruned model m on
// calibration data. Where the model has BatchNormalization nodes, every
// BN downstream of a layer that lost input channels gets its running mean
// and variance re-estimated from its input in the pruned model, in graph
// order (each BN sees the ones before it already recalibrated). Where it
// has none (batch norms folded into the convolutions), every layer that
// lost input channels gets a per-output-channel affine correction,
// W̃_c ← a_c W̃_c and b̃_c ← a_c (b̃_c − μ̃_c) + μ_c with a_c = σ_c/σ̃_c, so
// that its output mean and standard deviation over the data match the
// dense model's (μ, σ: dense; μ̃, σ̃: pruned); a zero bias is added when
// the layer has none. dense is the model before pruning.
func RecalibrateBN(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("prune: --recalibrate-bn needs calibration data")
	}
	changed := changedLayers(dense, p)
	after := downstream(m.Graph, changed)
	var bns []*graph.Node
	hasBN := false
	for _, n := range m.Graph.Nodes {
		if n.Op() == "BatchNormalization" {
			hasBN = true
			if after[n.Name()] {
				bns = append(bns, n)
			}
		}
	}
	if hasBN {
		for _, n := range bns {
			if err := reestimateBN(ctx, m, n, src, batch); err != nil {
				return nil, err
			}
		}
		return []string{fmt.Sprintf("re-estimated %d BatchNormalization nodes", len(bns))}, nil
	}
	dr, err := calib.NewRunner(dense, layerOutputs(changed))
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	fixed := 0
	var notes []string
	for _, dl := range changed {
		n, pl, err := prunedLayer(m.Graph, dl)
		if n == nil || err != nil {
			continue
		}
		rows := keptRows(dl, p)
		if len(rows) != pl.Out() {
			return nil, fmt.Errorf("prune: recalibrate %s: %d kept rows, pruned layer has %d", n.Name(), len(rows), pl.Out())
		}
		pr, err := calib.NewRunner(m, []string{n.Output(0)})
		if err != nil {
			return nil, err
		}
		ds, ps := newChanStats(dl.Out()), newChanStats(pl.Out())
		err = src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
			dv, err := dr.Run(ctx, in)
			if err != nil {
				return err
			}
			pv, err := pr.Run(ctx, in)
			if err != nil {
				return err
			}
			if err := ds.add(dv[dl.Node.Output(0)], chanAxis(dl)); err != nil {
				return err
			}
			return ps.add(pv[n.Output(0)], chanAxis(pl))
		})
		pr.Close()
		if err != nil {
			return nil, err
		}
		w, err := pl.Matrix(m.Graph)
		if err != nil {
			return nil, err
		}
		bias := layerBias(m.Graph, n, pl.Out())
		if bias == "" && pl.Desc.HasBiasInput() {
			if bias, err = addBias(m, n, pl.Out(), ".recalibrated_bias"); err != nil {
				return nil, err
			}
		}
		b := make([]float64, pl.Out())
		if bias != "" {
			if b, err = constVec(m.Graph, bias); err != nil {
				return nil, err
			}
		} else {
			notes = append(notes, fmt.Sprintf("%s: MatMul without a bias, standard deviation matched, mean not", n.Name()))
		}
		for r := range pl.Out() {
			mu, sd := ds.meanStd(rows[r])
			pmu, psd := ps.meanStd(r)
			a := 1.0
			if psd > 1e-12 && sd > 0 {
				a = sd / psd
			}
			for j := range pl.In() {
				w[r*pl.In()+j] *= a
			}
			b[r] = a*(b[r]-pmu) + mu
		}
		if err := pl.SetMatrix(m.Graph, w); err != nil {
			return nil, err
		}
		if bias != "" {
			if err := setVec(m.Graph, bias, b); err != nil {
				return nil, err
			}
		}
		fixed++
	}
	return append(notes, fmt.Sprintf("no BatchNormalization nodes: matched output mean and std of %d layers to the dense model", fixed)), nil
}

// reestimateBN sets n's running mean and variance to the statistics of
// its input in m over the data.
func reestimateBN(ctx context.Context, m *graph.Model, n *graph.Node, src *calib.Source, batch int) error {
	meanT, ok1 := m.Graph.Constant(n.Input(3))
	varT, ok2 := m.Graph.Constant(n.Input(4))
	if !ok1 || !ok2 {
		return fmt.Errorf("prune: %s: running statistics are not constants", n)
	}
	r, err := calib.NewRunner(m, []string{n.Input(0)})
	if err != nil {
		return err
	}
	defer r.Close()
	var st *chanStats
	err = src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
		v, err := r.Run(ctx, in)
		if err != nil {
			return err
		}
		x := v[n.Input(0)]
		if len(x.Shape) < 2 {
			return fmt.Errorf("prune: %s: input of rank %d", n, len(x.Shape))
		}
		if st == nil {
			st = newChanStats(int(x.Shape[1]))
		}
		return st.add(x, 1)
	})
	if err != nil {
		return err
	}
	mean := make([]float32, st.c)
	vari := make([]float32, st.c)
	for c := range st.c {
		mu, sd := st.meanStd(c)
		mean[c], vari[c] = float32(mu), float32(sd*sd)
	}
	if err := graph.SetFloat32s(meanT, meanT.Dims, mean); err != nil {
		return err
	}
	return graph.SetFloat32s(varT, varT.Dims, vari)
}

// chanStats accumulates per-channel sums over every other axis.
type chanStats struct {
	c          int
	sum, sq, n []float64
}

func newChanStats(c int) *chanStats {
	return &chanStats{c: c, sum: make([]float64, c), sq: make([]float64, c), n: make([]float64, c)}
}

// add adds a tensor whose channel axis is axis.
func (s *chanStats) add(d tensor.Dense, axis int) error {
	if axis < 0 {
		axis += len(d.Shape)
	}
	if axis >= len(d.Shape) || int(d.Shape[axis]) != s.c {
		return fmt.Errorf("prune: statistics of %v over axis %d: want %d channels", d.Shape, axis, s.c)
	}
	x, err := d.Float64s()
	if err != nil {
		return err
	}
	inner := 1
	for _, v := range d.Shape[axis+1:] {
		inner *= int(v)
	}
	for i, v := range x {
		c := (i / inner) % s.c
		s.sum[c] += v
		s.sq[c] += v * v
		s.n[c]++
	}
	return nil
}

// meanStd returns channel c's mean and (population) standard deviation.
func (s *chanStats) meanStd(c int) (float64, float64) {
	if s.n[c] == 0 {
		return 0, 0
	}
	mu := s.sum[c] / s.n[c]
	return mu, math.Sqrt(max(s.sq[c]/s.n[c]-mu*mu, 0))
}

// chanAxis is the output channel axis of a layer's output: 1 for Conv,
// the last for Gemm/MatMul.
func chanAxis(l *calib.Layer) int { return l.ChannelAxis() }

func layerOutputs(ls []*calib.Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Node.Output(0)
	}
	return out
}

// downstream returns the names of nodes reachable from the outputs of
// the given layers (the layers included).
func downstream(g *graph.Graph, ls []*calib.Layer) map[string]bool {
	seen := map[string]bool{}
	var stack []*graph.Node
	for _, l := range ls {
		if n := nodeByName(g, l.Node.Name()); n != nil {
			stack = append(stack, n)
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n.Name()] {
			continue
		}
		seen[n.Name()] = true
		for _, o := range n.Proto.GetOutput() {
			stack = append(stack, g.Consumers(o)...)
		}
	}
	return seen
}

// addBias gives a Conv or Gemm node a zero bias of out values, named
// after the node and suffix.
func addBias(m *graph.Model, n *graph.Node, out int, suffix string) (string, error) {
	d, ok := graph.WeightedOf(n)
	if !ok || !d.HasBiasInput() {
		return "", fmt.Errorf("prune: %s: no bias input", n)
	}
	name := n.Name() + suffix
	for m.Graph.Value(name) != nil {
		name += "_"
	}
	t := graph.FloatTensor(name, []int64{int64(out)}, make([]float32, out))
	m.Proto.Graph.Initializer = append(m.Proto.Graph.Initializer, t)
	in := n.Proto.Input
	for len(in) <= d.BiasInput {
		in = append(in, "")
	}
	in[d.BiasInput] = name
	n.Proto.Input = in
	if err := m.Graph.Reindex(); err != nil {
		return "", err
	}
	return name, nil
}
