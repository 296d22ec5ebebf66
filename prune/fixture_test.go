package prune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// oracleTolerance bounds the difference between a model with dead
// channels and the same model with those channels removed, relative to
// the largest output magnitude. Removing zero terms only changes float
// summation order inside onnxruntime's kernels.
const oracleTolerance = 1e-5

type fixture struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	RefInputs string `json:"ref_inputs"`
}

const fixtureDir = "../fixtures"

func cnnFixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all []fixture
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, f := range all {
		if f.Kind == "cnn" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatal("no CNN fixtures in the manifest")
	}
	return out
}

func loadFixture(t *testing.T, f fixture) *graph.Model {
	t.Helper()
	m, err := graph.Load(filepath.Join(fixtureDir, f.Path))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reload(t *testing.T, m *graph.Model) *graph.Model {
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

func inputsOf(t *testing.T, f fixture) map[string]tensor.Dense {
	t.Helper()
	in, err := tensor.ReadNpz(filepath.Join(fixtureDir, f.RefInputs))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// run returns the outputs of m in onnxruntime.
func run(t *testing.T, m *graph.Model, in map[string]tensor.Dense) []tensor.Dense {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{})
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

// maxRelDiff is max|a−b| / max|b|.
func maxRelDiff(t *testing.T, a, b []tensor.Dense) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d outputs vs %d", len(a), len(b))
	}
	worst := 0.0
	for i := range a {
		if !equalShape(a[i].Shape, b[i].Shape) {
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
		scale, diff := 1e-12, 0.0
		for k := range y {
			scale = math.Max(scale, math.Abs(y[k]))
			diff = math.Max(diff, math.Abs(x[k]-y[k]))
		}
		worst = math.Max(worst, diff/scale)
	}
	return worst
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// removedOf picks the indices to remove from a group of size n: every
// third index starting at 1, at least one, never all.
func removedOf(n int) (removed map[int]bool, kept []int) {
	removed = map[int]bool{}
	for i := 1; i < n; i += 3 {
		removed[i] = true
	}
	if len(removed) == 0 && n > 1 {
		removed[0] = true
	}
	for i := range n {
		if !removed[i] {
			kept = append(kept, i)
		}
	}
	return removed, kept
}

// killInputs zeroes, in m, the input-side weight slices of the removed
// indices of group grp: the removed channels then contribute nothing
// anywhere, whatever their values.
func killInputs(t *testing.T, m *graph.Model, grp *prune.Group, removed map[int]bool) {
	t.Helper()
	zeroMembers(t, m, grp, removed, func(kind string) bool { return kind == prune.KindWeightIn })
}

// zeroMembers zeroes, in m, the slices of the removed indices of group
// grp in every member whose kind is picked.
func zeroMembers(t *testing.T, m *graph.Model, grp *prune.Group, removed map[int]bool, pick func(kind string) bool) {
	t.Helper()
	for _, mem := range grp.Members {
		if !pick(mem.Kind) {
			continue
		}
		tp, ok := m.Graph.Constant(mem.Tensor)
		if !ok {
			t.Fatalf("member %s is not a constant", mem.Tensor)
		}
		w, err := graph.Float32s(tp)
		if err != nil {
			t.Fatal(err)
		}
		outer, inner := int64(1), int64(1)
		for _, d := range tp.Dims[:mem.Axis] {
			outer *= d
		}
		for _, d := range tp.Dims[mem.Axis+1:] {
			inner *= d
		}
		n := int64(len(mem.Map))
		for o := int64(0); o < outer; o++ {
			for p := int64(0); p < n; p++ {
				if i := mem.Map[p]; i >= 0 && removed[i] {
					for k := int64(0); k < inner; k++ {
						w[(o*n+p)*inner+k] = 0
					}
				}
			}
		}
		if err := graph.SetFloat32s(tp, tp.Dims, w); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExactnessOracle is PRUNING.md §4: for every prunable group of every
// CNN fixture, the channels to remove are made dead by zeroing their
// consumers' input slices; removing exactly those channels must then give
// the same outputs. Groups normalised over their channel axis (layer
// norms) change by construction; they must still prune into a model that
// runs with the same output shapes.
func TestExactnessOracle(t *testing.T) {
	for _, f := range sweeptest.Pick(cnnFixtures(t)) {
		t.Run(f.Name, func(t *testing.T) {
			in := inputsOf(t, f)
			base := loadFixture(t, f)
			an, err := prune.Analyze(base, prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := run(t, base, in)
			exact := 0
			for _, grp := range an.Prunable() {
				removed, kept := removedOf(grp.Size)
				if len(removed) == 0 {
					continue
				}
				dead := reload(t, base)
				killInputs(t, dead, grp, removed)
				pruned := reload(t, dead)
				pa, err := prune.Analyze(pruned, prune.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := pa.Apply(map[int][]int{grp.ID: kept}); err != nil {
					t.Fatalf("group %d (%s): %v", grp.ID, grp.Name, err)
				}
				got := run(t, pruned, in)
				if grp.Inexact != "" {
					maxRelDiff(t, got, want) // shapes only
					continue
				}
				ref := run(t, dead, in)
				if d := maxRelDiff(t, got, ref); d > oracleTolerance {
					t.Errorf("group %d (%s, %d of %d removed): outputs differ by %.3g relative", grp.ID, grp.Name, len(removed), grp.Size, d)
				}
				exact++
			}
			t.Logf("%d prunable groups, %d checked exactly, %d frozen", len(an.Prunable()), exact, len(an.Groups)-len(an.Prunable()))
		})
	}
}

func plan(t *testing.T, m *graph.Model, s prune.Settings) (*prune.Analysis, *prune.Plan) {
	t.Helper()
	an, p, err := tryPlan(t, m, s)
	if err != nil {
		t.Fatal(err)
	}
	return an, p
}

func tryPlan(t *testing.T, m *graph.Model, s prune.Settings) (*prune.Analysis, *prune.Plan, error) {
	t.Helper()
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := prunetest.SelectOn(t, an, s)
	return an, p, err
}

// TestFixturesPruneAndRun prunes every CNN fixture at 0.3 and 0.5 of
// channels, parameters and MACs; the result runs with the same output
// shapes, its recounted cost is the plan's, parameter and MAC targets land
// within 2% of the total, and the bytes are deterministic.
func TestFixturesPruneAndRun(t *testing.T) {
	for _, f := range sweeptest.Pick(cnnFixtures(t)) {
		t.Run(f.Name, func(t *testing.T) {
			in := inputsOf(t, f)
			want := run(t, loadFixture(t, f), in)
			for _, target := range []string{"channels", "params", "macs"} {
				for _, ratio := range []float64{0.3, 0.5} {
					s := prune.Settings{Criterion: "magnitude", Scope: "global", Target: target, Ratio: ratio, MaxLayerRatio: 0.8}
					m := loadFixture(t, f)
					an, p, err := tryPlan(t, m, s)
					if errors.Is(err, prune.ErrTarget) && target != "channels" {
						// Too much is frozen (shufflenet's shuffles): the
						// error says how far pare can go.
						t.Logf("%s %.1f: %v", target, ratio, err)
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if err := an.ApplyPlan(p); err != nil {
						t.Fatalf("%s %.1f: %v", target, ratio, err)
					}
					got := run(t, m, in)
					maxRelDiff(t, got, want) // checks shapes; values differ
					re, err := prune.Analyze(reload(t, m), prune.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if c := re.Cost(); c != p.After {
						t.Errorf("%s %.1f: recounted cost %+v, plan says %+v", target, ratio, c, p.After)
					}
					// graph.Count, written independently, must see the same
					// reductions in the files.
					c0, err := graph.Count(loadFixture(t, f))
					if err != nil {
						t.Fatal(err)
					}
					c1, err := graph.Count(reload(t, m))
					if err != nil {
						t.Fatal(err)
					}
					if c0.Params-c1.Params != p.Before.Params-p.After.Params || c0.MACs-c1.MACs != p.Before.MACs-p.After.MACs {
						t.Errorf("%s %.1f: graph.Count sees params −%d MACs −%d, plan −%d −%d", target, ratio,
							c0.Params-c1.Params, c0.MACs-c1.MACs, p.Before.Params-p.After.Params, p.Before.MACs-p.After.MACs)
					}
					switch target {
					case "params":
						checkTarget(t, "params", p.Before.Params, p.After.Params, ratio)
					case "macs":
						checkTarget(t, "macs", p.Before.MACs, p.After.MACs, ratio)
					}
					m2 := loadFixture(t, f)
					an2, p2 := plan(t, m2, s)
					if err := an2.ApplyPlan(p2); err != nil {
						t.Fatal(err)
					}
					b1, _ := m.Marshal()
					b2, _ := m2.Marshal()
					if !bytes.Equal(b1, b2) {
						t.Errorf("%s %.1f: two runs gave different bytes", target, ratio)
					}
					t.Logf("%s %.1f: params %d → %d, MACs %d → %d", target, ratio, p.Before.Params, p.After.Params, p.Before.MACs, p.After.MACs)
				}
			}
		})
	}
}

func checkTarget(t *testing.T, what string, before, after int64, ratio float64) {
	t.Helper()
	got := float64(before-after) / float64(before)
	if math.Abs(got-ratio) > 0.02 {
		t.Errorf("%s: reduced %.3f, asked %.3f", what, got, ratio)
	}
}

// TestRatioZeroIsIdentity: ratio 0 keeps every channel, the outputs and
// the parameter count.
func TestRatioZeroIsIdentity(t *testing.T) {
	for _, f := range sweeptest.Pick(cnnFixtures(t)) {
		t.Run(f.Name, func(t *testing.T) {
			in := inputsOf(t, f)
			orig := loadFixture(t, f)
			want := run(t, orig, in)
			m := loadFixture(t, f)
			an, p := plan(t, m, prune.Settings{Criterion: "magnitude", Scope: "global", Ratio: 0, MaxLayerRatio: 0.8})
			if err := an.ApplyPlan(p); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(t, run(t, m, in), want); d != 0 {
				t.Errorf("outputs changed by %g", d)
			}
			if p.Before != p.After {
				t.Errorf("cost changed: %+v → %+v", p.Before, p.After)
			}
			a, _ := orig.Marshal()
			b, _ := m.Marshal()
			if !bytes.Equal(a, b) {
				t.Error("model bytes changed")
			}
		})
	}
}
