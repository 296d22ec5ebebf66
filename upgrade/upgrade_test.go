package upgrade_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
	"github.com/pare-dev/pare/upgrade"
)

const fixtureDir = "../fixtures"

type fixture struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Opset     int64  `json:"opset"`
	RefInputs string `json:"ref_inputs"`
}

func fixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("empty manifest")
	}
	return fs
}

func run(t *testing.T, m *graph.Model, in map[string]tensor.Dense) []tensor.Dense {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatalf("onnxruntime rejects the model: %v", err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatalf("onnxruntime run: %v", err)
	}
	return out
}

// inputSets returns the fixture's reference inputs and a copy whose float
// inputs are replaced by normal noise of the same shape.
func inputSets(t *testing.T, f fixture, seed uint64) []map[string]tensor.Dense {
	t.Helper()
	ref, err := tensor.ReadNpz(filepath.Join(fixtureDir, f.RefInputs))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	noise := map[string]tensor.Dense{}
	for name, d := range ref {
		if d.DType != tensor.Float32 {
			noise[name] = d
			continue
		}
		v := make([]float32, d.Len())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		nd, err := tensor.New(d.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		noise[name] = nd
	}
	return []map[string]tensor.Dense{ref, noise}
}

// maxRel is max |a−b| / max(1e-30, max |b|).
func maxRel(t *testing.T, a, b tensor.Dense) float64 {
	t.Helper()
	if tensor.FormatShape(a.Shape) != tensor.FormatShape(b.Shape) {
		t.Fatalf("shape %v, original %v", a.Shape, b.Shape)
	}
	x, _ := a.Float64s()
	y, _ := b.Float64s()
	scale, diff := 1e-30, 0.0
	for i := range y {
		scale = math.Max(scale, math.Abs(y[i]))
		diff = math.Max(diff, math.Abs(x[i]-y[i]))
		if math.IsNaN(x[i]) != math.IsNaN(y[i]) {
			return math.Inf(1)
		}
	}
	return diff / scale
}

// Every fixture upgraded to 13 (when older) and to 21 computes what the
// original computes in onnxruntime, on the reference inputs and on noise.
func TestFixturesAgreeAfterUpgrade(t *testing.T) {
	for _, f := range sweeptest.Pick(fixtures(t)) {
		t.Run(f.Name, func(t *testing.T) {
			orig, err := graph.Load(filepath.Join(fixtureDir, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			sets := inputSets(t, f, uint64(f.Opset))
			want := make([][]tensor.Dense, len(sets))
			for i, in := range sets {
				want[i] = run(t, orig, in)
			}
			for _, target := range []int64{13, 21} {
				if target <= f.Opset {
					continue
				}
				m, err := graph.Load(filepath.Join(fixtureDir, f.Path))
				if err != nil {
					t.Fatal(err)
				}
				rep, err := upgrade.To(m, target)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.OpsetVersion(""); got != target || rep.To != target || rep.From != f.Opset {
					t.Fatalf("opset %d, report %d → %d; want %d → %d", got, rep.From, rep.To, f.Opset, target)
				}
				if err := graph.CheckInvariants(m); err != nil {
					t.Fatal(err)
				}
				for _, n := range m.Graph.Nodes {
					if n.Domain() == "" && n.Op() == "Upsample" {
						t.Errorf("node %s still Upsample at opset %d", n.Name(), target)
					}
				}
				for i, in := range sets {
					got := run(t, m, in)
					for j := range want[i] {
						if d := maxRel(t, got[j], want[i][j]); d > 1e-5 {
							t.Errorf("to %d, input set %d, output %d: max |diff| / max |original| = %.3g", target, i, j, d)
						}
					}
				}
				t.Logf("%s: %v", rep, rep.Rewritten)
			}
		})
	}
}
