package importance

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// Zeroth-order layer sensitivity (ECoFLaP) sets layer-wise sparsity; a
// local criterion then picks the channels inside each group.
//
// The "layer" of a group is the weights whose output channels the group
// indexes (its weight-out members). For each group, z ~ N(0, I) is drawn
// (seeded by the seed, the group id and the batch) over those weights and
// the model runs on a calibration batch at θ+εz and θ−εz; the score is
// |L(θ+εz) − L(θ−εz)| / 2ε, averaged over batches, with ε = 1e-3.
//
// The loss L is the cross-entropy of the model's first output (softmax
// over the last axis) against the dense model's top-1 decisions on the
// same batch, KL(onehot(argmax p_dense) ‖ p). A distortion against the
// dense model's full softmax (KL or MSE) is minimal at θ, so its central
// difference vanishes to first order and measures only rounding noise;
// the dense decisions keep a non-zero gradient and need no labels.
//
// The perturbed weights reach onnxruntime as inputs: one session of a
// copy of the model in which every scored weight is a graph input
// instead of an initializer; the other inputs get their dense values.
//
// The scores set the kept channels per group with prune.Allocate (every
// group keeps at least 1 − SMax; the rest of the kept budget is shared in
// proportion to score). Forward passes: one reference pass per batch plus
// two per group and batch, bounded by Budget by using fewer batches.
type Zeroth struct {
	Local   Scorer
	SMax    float64
	Epsilon float64
	Budget  int
	Seed    uint64
	// Passes is the number of forward passes made; Scores the sensitivity
	// of each group.
	Passes int
	Scores map[int]float64

	m *graph.Model
	d Data
}

// DefaultZOBudget bounds the forward passes of the zeroth-order scores.
const DefaultZOBudget = 256

// Name implements Scorer.
func (z *Zeroth) Name() string { return "zeroth+" + z.Local.Name() }

// Score implements Scorer with the local criterion.
func (z *Zeroth) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	return z.Local.Score(g, grp)
}

// Plan implements allocator. Kinds with a ratio of their own (--heads,
// --mlp, ...) are allocated among their groups at that ratio; the other
// groups at Ratio, or, with a params or MACs target, at the ratio whose
// plan lands nearest the target (kinds.go).
func (z *Zeroth) Plan(ctx context.Context, an *prune.Analysis, s prune.Settings) (*prune.Plan, error) {
	free, byKind := kindSplit(an, s)
	var scored []*prune.Group
	if s.Ratio > 0 {
		scored = append(scored, free...)
	}
	for _, k := range sortedNames(byKind) {
		scored = append(scored, byKind[k]...)
	}
	if err := z.sensitivities(ctx, an, scored); err != nil {
		return nil, err
	}
	smax := z.SMax
	if smax <= 0 {
		smax = s.MaxLayerRatio
	}
	alloc := func(groups []*prune.Group, ratio float64, into map[int]int) error {
		if len(groups) == 0 {
			return nil
		}
		n := make([]int, len(groups))
		sc := make([]float64, len(groups))
		for i, g := range groups {
			n[i], sc[i] = g.Size, z.Scores[g.ID]
		}
		keep, err := prune.Allocate(n, sc, ratio, smax)
		if err != nil {
			return err
		}
		for i, g := range groups {
			into[g.ID] = keep[i]
		}
		return nil
	}
	counts := map[int]int{}
	for _, k := range sortedNames(byKind) {
		if err := alloc(byKind[k], s.KindRatios[k], counts); err != nil {
			return nil, fmt.Errorf("%w (--%s %v)", err, k, s.KindRatios[k])
		}
	}
	local, err := ScoreAll(ctx, z.Local, an)
	if err != nil {
		return nil, err
	}
	if s.Options != nil {
		s.Options.ZOSMax, s.Options.ZOEpsilon, s.Options.ZOBudget, s.Options.ZOPasses = smax, z.Epsilon, z.Budget, z.Passes
		s.Options.ZOLoss, s.Options.ZOLocal = "cross-entropy to dense top-1", z.Local.Name()
	}
	if s.Target != "" && s.Target != "channels" && s.Ratio > 0 {
		return planForTarget(an, s, local, counts, smax, func(r float64) (map[int]int, error) {
			c := map[int]int{}
			return c, alloc(free, r, c)
		})
	}
	if err := alloc(free, s.Ratio, counts); err != nil {
		return nil, err
	}
	return an.PlanWithCounts(s, local, counts)
}

// perturbed lists, per group, the weight tensors it perturbs.
func perturbed(an *prune.Analysis) (map[int][]string, []string) {
	g := an.Graph()
	per := map[int][]string{}
	var all []string
	seen := map[string]bool{}
	for _, grp := range an.Prunable() {
		for _, mem := range grp.Members {
			// Integer codes of a quantized weight are not perturbed (their
			// float scales, a MatMulNBits member, are).
			if t := g.Initializer(mem.Tensor); mem.Kind != prune.KindWeightOut || t == nil || !graph.IsFloat(graph.DataTypeOf(t)) {
				continue
			}
			per[grp.ID] = append(per[grp.ID], mem.Tensor)
			if !seen[mem.Tensor] {
				seen[mem.Tensor] = true
				all = append(all, mem.Tensor)
			}
		}
	}
	return per, all
}

// overridable returns a copy of m in which the named initializers are
// graph inputs.
func overridable(m *graph.Model, names []string) ([]byte, map[string]tensor.Dense, error) {
	mp := graph.CloneProto(m.Proto)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	dense := map[string]tensor.Dense{}
	var keep []*onnx.TensorProto
	for _, t := range mp.Graph.Initializer {
		if !want[t.GetName()] {
			keep = append(keep, t)
			continue
		}
		v, err := graph.Float32s(t)
		if err != nil {
			return nil, nil, err
		}
		d, err := tensor.New(append([]int64{}, t.Dims...), v)
		if err != nil {
			return nil, nil, err
		}
		dense[t.GetName()] = d
		vi := &onnx.ValueInfoProto{Name: proto.String(t.GetName()), Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnx.TensorProto_FLOAT)), Shape: shapeProto(t.Dims)}}}}
		mp.Graph.Input = append(mp.Graph.Input, vi)
	}
	mp.Graph.Initializer = keep
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	return b, dense, err
}

func shapeProto(dims []int64) *onnx.TensorShapeProto {
	s := &onnx.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return s
}

// sensitivities scores the given groups.
func (z *Zeroth) sensitivities(ctx context.Context, an *prune.Analysis, groups []*prune.Group) error {
	if z.d.Src == nil {
		return fmt.Errorf("importance: the zeroth criterion needs --calib data")
	}
	if z.Epsilon <= 0 {
		z.Epsilon = 1e-3
	}
	if z.Budget <= 0 {
		z.Budget = DefaultZOBudget
	}
	per, all := perturbed(an)
	model, dense, err := overridable(z.m, all)
	if err != nil {
		return err
	}
	sess, err := ort.NewSession(model, ort.Options{Threads: 2})
	if err != nil {
		return fmt.Errorf("importance: zeroth: %w", err)
	}
	defer sess.Close()
	out := sess.Outputs()[0].Name
	batch := z.d.BatchSize()
	nb := (z.d.Src.Len() + batch - 1) / batch
	if most := z.Budget / (1 + 2*len(groups)); most < nb {
		nb = max(most, 1)
	}
	z.Scores = map[int]float64{}
	z.Passes = 0
	for b := range nb {
		in, err := z.d.Src.Batch(b*batch, min((b+1)*batch, z.d.Src.Len()))
		if err != nil {
			return err
		}
		feed := map[string]tensor.Dense{}
		for k, v := range in {
			feed[k] = v
		}
		for k, v := range dense {
			feed[k] = v
		}
		run := func() ([]float32, []int64, error) {
			z.Passes++
			o, err := sess.Run(ctx, feed, []string{out})
			if err != nil {
				return nil, nil, err
			}
			v, err := o[0].Float32s()
			return v, o[0].Shape, err
		}
		ref, shape, err := run()
		if err != nil {
			return err
		}
		classes := int(shape[len(shape)-1])
		labels := argmaxRows(ref, classes)
		for _, grp := range groups {
			names := per[grp.ID]
			if len(names) == 0 {
				continue
			}
			rng := rand.New(rand.NewPCG(z.Seed^uint64(grp.ID)<<20, uint64(b)))
			plus := map[string]tensor.Dense{}
			minus := map[string]tensor.Dense{}
			for _, nm := range names {
				d := dense[nm]
				w := d.Data.([]float32)
				p, m := make([]float32, len(w)), make([]float32, len(w))
				for i, v := range w {
					e := z.Epsilon * rng.NormFloat64()
					p[i], m[i] = float32(float64(v)+e), float32(float64(v)-e)
				}
				plus[nm], _ = tensor.New(d.Shape, p)
				minus[nm], _ = tensor.New(d.Shape, m)
			}
			loss := func(ws map[string]tensor.Dense) (float64, error) {
				for k, v := range ws {
					feed[k] = v
				}
				o, _, err := run()
				for k := range ws {
					feed[k] = dense[k]
				}
				if err != nil {
					return 0, err
				}
				return CrossEntropy(o, classes, labels), nil
			}
			lp, err := loss(plus)
			if err != nil {
				return err
			}
			lm, err := loss(minus)
			if err != nil {
				return err
			}
			z.Scores[grp.ID] += math.Abs(lp-lm) / (2 * z.Epsilon) / float64(nb)
		}
	}
	return nil
}

func argmaxRows(v []float32, classes int) []int {
	n := len(v) / classes
	out := make([]int, n)
	for i := range n {
		row := v[i*classes : (i+1)*classes]
		for j := range row {
			if row[j] > row[out[i]] {
				out[i] = j
			}
		}
	}
	return out
}

// CrossEntropy is the mean −log softmax(v)[label] over rows of size
// classes (in float64).
func CrossEntropy(v []float32, classes int, labels []int) float64 {
	total := 0.0
	for i, y := range labels {
		row := v[i*classes : (i+1)*classes]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = max(mx, float64(x))
		}
		s := 0.0
		for _, x := range row {
			s += math.Exp(float64(x) - mx)
		}
		total += mx + math.Log(s) - float64(row[y])
	}
	return total / float64(len(labels))
}

// SetData gives the criterion its model and calibration data.
func (z *Zeroth) SetData(m *graph.Model, d Data) { z.m, z.d = m, d }
