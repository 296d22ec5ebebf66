// Package prunetest holds test helpers shared by the tests of prune and
// of other packages: the dead-channel oracle that proves a structured
// pruning exact on a real model.
package prunetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// Tolerance bounds max |pruned − dead| relative to max |dead|: removing
// zero terms only changes float summation order inside the kernels.
const Tolerance = 1e-5

// Result is what DeadOracle measured.
type Result struct {
	Plan          *prune.Plan
	ParamsBefore  int64 // graph.Count of the dense model
	ParamsAfter   int64 // graph.Count of the pruned model
	MaxRelDiff    float64
	Exact         bool // every pruned group is exact (no normalisation statistics change)
	RemovedGroups int
	// Interface is what the pruned model's inputs and outputs keep of
	// the dense model's (a KV cache's heads), empty when they are whole.
	Interface ioslice.Map
}

// DeadOracle prunes a copy of m with settings s (criterion scores,
// selection) and proves the result against a "dead" model: the dense
// model in which every removed channel has its producing slices (Q/K/V
// rows of a removed head and their biases, fc1 rows of an MLP channel)
// and its consuming slices (output-projection or fc2 columns) zeroed.
// The pruned model must run in onnxruntime on in with the dense model's
// output shapes, have fewer parameters, and (when no inexact group is
// pruned) match the dead model within Tolerance. m is not modified.
func DeadOracle(t testing.TB, m *graph.Model, in map[string]tensor.Dense, opts prune.Options, s prune.Settings) Result {
	t.Helper()
	return DeadOracleRuntime(t, m, in, opts, s, ort.Options{})
}

// DeadOracleRuntime is DeadOracle with the models run under the given
// onnxruntime options: a model whose arithmetic onnxruntime's extended
// optimisations change (weight-only int8 DequantizeLinear → MatMul gets
// activation quantization in blocks along K, which moves when K shrinks)
// is compared under basic optimisations.
func DeadOracleRuntime(t testing.TB, m *graph.Model, in map[string]tensor.Dense, opts prune.Options, s prune.Settings, ro ort.Options) Result {
	t.Helper()
	p := Select(t, m, opts, s)
	res := Result{Plan: p, Exact: true}
	dead := Clone(t, m)
	for _, grp := range KillPlan(t, dead, opts, p.Keep()) {
		res.RemovedGroups++
		if grp.Inexact != "" {
			res.Exact = false
		}
	}
	if res.RemovedGroups == 0 {
		t.Fatal("the plan removes nothing")
	}
	pruned := Clone(t, dead)
	ap, err := prune.Analyze(pruned, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.ApplyPlan(p); err != nil {
		t.Fatalf("apply: %v", err)
	}
	pruned = Clone(t, pruned)
	want := RunWith(t, m, in, ro)
	ref := RunWith(t, dead, in, ro)
	got := RunWith(t, pruned, in, ro)
	// A KV cache that lost heads is compared on the dense model's kept
	// positions; its session was fed them the same way (ioslice).
	io, err := ioslice.FromModel(pruned.Proto)
	if err != nil {
		t.Fatal(err)
	}
	want, ref = SliceOutputs(t, m, io, want), SliceOutputs(t, m, io, ref)
	res.Interface = io
	for i := range want {
		if !slices.Equal(got[i].Shape, want[i].Shape) {
			t.Fatalf("output %d: pruned shape %v, dense %v", i, got[i].Shape, want[i].Shape)
		}
	}
	if MaxRelDiff(t, ref, want) == 0 {
		t.Errorf("zeroing the removed channels did not change the outputs: the oracle proves nothing")
	}
	res.MaxRelDiff = MaxRelDiff(t, got, ref)
	if res.Exact && res.MaxRelDiff > Tolerance {
		t.Errorf("pruned outputs differ from the dead model by %.3g relative (tolerance %g)", res.MaxRelDiff, Tolerance)
	}
	c0, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := graph.Count(pruned)
	if err != nil {
		t.Fatal(err)
	}
	res.ParamsBefore, res.ParamsAfter = c0.Params, c1.Params
	if c1.Params >= c0.Params {
		t.Errorf("params %d → %d: nothing removed", c0.Params, c1.Params)
	}
	return res
}

// Select analyses a copy of m under opts, scores it with s's
// (data-free) criterion and returns the selection s makes.
func Select(t testing.TB, m *graph.Model, opts prune.Options, s prune.Settings) *prune.Plan {
	t.Helper()
	an, err := prune.Analyze(Clone(t, m), opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := SelectOn(t, an, s)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	return p
}

// SelectOn scores analysis an with s's (data-free) criterion and returns
// the selection s makes, or the error selection gives.
func SelectOn(t testing.TB, an *prune.Analysis, s prune.Settings) (*prune.Plan, error) {
	t.Helper()
	sc, err := importance.New(s.Criterion, "l2", s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := importance.ScoreAll(context.Background(), sc, an)
	if err != nil {
		t.Fatal(err)
	}
	return an.Select(scores, s)
}

// KillPlan zeroes in m the channels a selection removes (Kill on every
// member of every group keep leaves short; keep maps group ids of m's
// analysis under opts to kept indices) and returns those groups.
func KillPlan(t testing.TB, m *graph.Model, opts prune.Options, keep map[int][]int) []*prune.Group {
	t.Helper()
	an, err := prune.Analyze(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []*prune.Group
	for gid, kept := range keep {
		grp := an.Groups[gid]
		if len(kept) == grp.Size {
			continue
		}
		removed := map[int]bool{}
		for i := range grp.Size {
			removed[i] = !slices.Contains(kept, i)
		}
		for _, mem := range grp.Members {
			Kill(t, m, mem, removed)
		}
		out = append(out, grp)
	}
	return out
}

// Kill zeroes the positions of a member's axis that map to removed
// indices, for the producing and consuming slices (weights, biases,
// broadcast constants); normalisation members are left alone. A
// constant fill shared by several readers (Member.Copy) must already be
// zero there, since zeroing it would change the other readers.
func Kill(t testing.TB, m *graph.Model, mem prune.Member, removed map[int]bool) {
	t.Helper()
	switch mem.Kind {
	case prune.KindWeightOut, prune.KindWeightIn, prune.KindBias, prune.KindConst:
	default:
		return
	}
	tp, ok := m.Graph.Constant(mem.Tensor)
	if !ok {
		t.Fatalf("member %s is not a constant", mem.Tensor)
	}
	if !graph.IsFloat(graph.DataTypeOf(tp)) {
		killQuantized(t, m, mem, tp, removed)
		return
	}
	w, err := graph.Float32s(tp)
	if err != nil {
		t.Fatalf("member %s: %v", mem.Tensor, err)
	}
	outer, inner := int64(1), int64(1)
	for _, d := range tp.Dims[:mem.Axis] {
		outer *= d
	}
	for _, d := range tp.Dims[mem.Axis+1:] {
		inner *= d
	}
	n := int64(len(mem.Map))
	changed := false
	for o := range outer {
		for p := range n {
			if i := mem.Map[p]; i >= 0 && removed[i] {
				for k := range inner {
					if j := (o*n+p)*inner + k; w[j] != 0 {
						w[j], changed = 0, true
					}
				}
			}
		}
	}
	if !changed {
		return
	}
	if mem.Copy {
		t.Fatalf("member %s of %s: a shared non-zero fill; the oracle cannot kill it for one reader", mem.Tensor, mem.Node)
	}
	if err := graph.SetFloat32s(tp, tp.Dims, w); err != nil {
		t.Fatal(err)
	}
}

// killQuantized sets the removed positions of an integer weight read by
// DequantizeLinear to their zero point, so that they dequantize to zero.
func killQuantized(t testing.TB, m *graph.Model, mem prune.Member, tp *onnx.TensorProto, removed map[int]bool) {
	t.Helper()
	v := m.Graph.Value(mem.Tensor)
	var dq *graph.Node
	for _, c := range v.Consumers {
		if c.Op() == "DequantizeLinear" && c.Input(0) == mem.Tensor {
			dq = c
		}
	}
	if dq == nil || len(v.Consumers) != 1 {
		t.Fatalf("member %s (%v) is not an integer weight read by one DequantizeLinear", mem.Tensor, graph.DataTypeOf(tp))
	}
	q, err := graph.Int64s(tp)
	if err != nil {
		t.Fatal(err)
	}
	dims := tp.Dims
	zeros := []int64{0}
	if zp := dq.Input(2); zp != "" {
		zt, ok := m.Graph.Constant(zp)
		if !ok {
			t.Fatalf("%s: zero point is not a constant", dq.Name())
		}
		if zeros, err = graph.Int64s(zt); err != nil {
			t.Fatal(err)
		}
	}
	qaxis := int(dq.IntAttr("axis", 1))
	if qaxis < 0 {
		qaxis += len(dims)
	}
	stride := func(ax int) int64 {
		s := int64(1)
		for _, d := range dims[ax+1:] {
			s *= d
		}
		return s
	}
	ms, qs := stride(mem.Axis), stride(qaxis)
	for j := range q {
		p := (int64(j) / ms) % dims[mem.Axis]
		if i := mem.Map[p]; i < 0 || !removed[i] {
			continue
		}
		z := zeros[0]
		if len(zeros) > 1 {
			z = zeros[(int64(j)/qs)%dims[qaxis]]
		}
		q[j] = z
	}
	if err := graph.SetInt64s(tp, dims, q); err != nil {
		t.Fatal(err)
	}
}

// Clone returns an independent copy of m (through its bytes).
func Clone(t testing.TB, m *graph.Model) *graph.Model {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Run returns the outputs of m in onnxruntime.
func Run(t testing.TB, m *graph.Model, in map[string]tensor.Dense) []tensor.Dense {
	t.Helper()
	return RunWith(t, m, in, ort.Options{})
}

// RunWith returns the outputs of m in onnxruntime under the given options.
func RunWith(t testing.TB, m *graph.Model, in map[string]tensor.Dense, ro ort.Options) []tensor.Dense {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SliceOutputs restricts outputs of m, in m's output order, to the
// positions io keeps.
func SliceOutputs(t testing.TB, m *graph.Model, io ioslice.Map, outs []tensor.Dense) []tensor.Dense {
	t.Helper()
	res := make([]tensor.Dense, len(outs))
	for i, o := range outs {
		var err error
		if res[i], err = io.Slice(m.Graph.Outputs[i].Name, o); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// MaxRelDiff is max |a−b| / max |b| over all outputs (shapes must match).
func MaxRelDiff(t testing.TB, a, b []tensor.Dense) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d outputs vs %d", len(a), len(b))
	}
	worst, scale := 0.0, 0.0
	for i := range a {
		if !slices.Equal(a[i].Shape, b[i].Shape) {
			t.Fatalf("output %d: shape %v vs %v", i, a[i].Shape, b[i].Shape)
		}
		x, err := a[i].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		y, err := b[i].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		for j := range x {
			d := math.Abs(x[j] - y[j])
			if math.IsNaN(d) {
				return math.Inf(1) // NaN must fail every tolerance
			}
			worst = max(worst, d)
			scale = max(scale, math.Abs(y[j]))
		}
	}
	if scale == 0 {
		return worst
	}
	return worst / scale
}

// String summarises a result for test logs.
func (r Result) String() string {
	return fmt.Sprintf("params %d → %d, %d groups pruned, max rel diff %.2g (exact %v)",
		r.ParamsBefore, r.ParamsAfter, r.RemovedGroups, r.MaxRelDiff, r.Exact)
}
