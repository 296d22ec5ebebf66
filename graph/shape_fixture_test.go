package graph_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

const fixturesDir = "../fixtures"

// fixture is the part of fixtures/manifest.json these tests read.
type fixture struct {
	Name           string `json:"name"`
	Path           string `json:"path"`
	ValueInfo      bool   `json:"value_info"`
	OnnxParamElems int64  `json:"onnx_param_elems"`
	RefInputs      string `json:"ref_inputs"`
	Kind           string `json:"kind"`
}

// fixRefSizes fixes the symbolic image sizes of a fixture (height and
// width) to those of its reference inputs, as --input-shape does; it
// reports whether there were any.
func fixRefSizes(t testing.TB, f fixture, m *graph.Model) bool {
	t.Helper()
	if len(m.SymbolicSizes()) == 0 {
		return false
	}
	ref, err := tensor.ReadNpz(filepath.Join(fixturesDir, f.RefInputs))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int64{}
	for name, d := range ref {
		shapes[name] = d.Shape
	}
	if err := m.SetInputShapes(shapes); err != nil {
		t.Fatal(err)
	}
	if sym := m.SymbolicSizes(); len(sym) > 0 {
		t.Fatalf("still symbolic after fixing: %v", sym)
	}
	return true
}

func loadManifest(t testing.TB) []fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixturesDir, "manifest.json"))
	if err != nil {
		t.Fatalf("fixtures manifest: %v", err)
	}
	var fs []fixture
	if err := json.Unmarshal(data, &fs); err != nil {
		t.Fatalf("fixtures manifest: %v", err)
	}
	if len(fs) == 0 {
		t.Fatal("fixtures manifest lists no models")
	}
	return fs
}

func loadFixture(t testing.TB, f fixture) *graph.Model {
	t.Helper()
	m, err := graph.Load(filepath.Join(fixturesDir, f.Path))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Inferred from the inputs alone, every fixture's outputs get exactly
// their declared type and shape (symbolic names included). A declared
// name that no graph input uses is the exporter's placeholder for a size
// it did not trace (TorchScript's "LayerNormalization299_dim_0"); there a
// symbol of the inputs is what inference should find.
func TestInferShapesFixtureOutputs(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		t.Run(f.Name, func(t *testing.T) {
			m := loadFixture(t, f)
			// Symbolic image sizes leave every size after a strided Conv
			// unknown; fixed as --input-shape does, all are known.
			fixed := fixRefSizes(t, f, m)
			s, err := graph.InferShapesWith(m, graph.InferOptions{IgnoreValueInfo: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range m.Graph.Outputs {
				want, _ := graph.ShapeFromInfo(out.Info)
				got, ok := s.Of(out.Name)
				if ok && got.Ranked && len(got.Dims) == len(want.Dims) {
					for i, d := range want.Dims {
						if d.IsSymbolic() && !inputSyms(m)[d.Symbol()] && got.Dims[i].IsSymbolic() {
							want.Dims[i] = got.Dims[i]
						}
						// Fixed input sizes make the batch a number.
						if fixed && d.IsSymbolic() && got.Dims[i].IsKnown() {
							want.Dims[i] = got.Dims[i]
						}
					}
				}
				if !ok || !got.Equal(want) {
					t.Errorf("output %s: inferred %v, declared %v", out.Name, got, want)
				}
			}
			if len(s.Conflicts) > 0 {
				t.Errorf("conflicts: %v", s.Conflicts)
			}
			unknown := 0
			for _, n := range m.Graph.Nodes {
				for _, o := range n.Proto.Output {
					if got, ok := s.Of(o); !ok || !complete(got) {
						unknown++
						t.Logf("%s of %s: %v", o, n, got)
					}
				}
			}
			if unknown > 0 {
				t.Errorf("%d node outputs without a complete shape", unknown)
			}
		})
	}
}

// Where the exporter wrote value_info, inference from the inputs alone
// agrees with it: same element type and rank, equal known dims, and a
// symbolic or known dim wherever the exporter had a symbol.
func TestInferShapesAgreesWithValueInfo(t *testing.T) {
	checked := 0
	// Filter before trimming: -short keeps a spread of the fixtures
	// that have value_info, whatever the others are.
	var withInfo []fixture
	for _, f := range loadManifest(t) {
		if f.ValueInfo {
			withInfo = append(withInfo, f)
		}
	}
	for _, f := range sweeptest.Pick(withInfo) {
		t.Run(f.Name, func(t *testing.T) {
			m := loadFixture(t, f)
			s, err := graph.InferShapesWith(m, graph.InferOptions{IgnoreValueInfo: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, vi := range m.Proto.Graph.ValueInfo {
				want, ok := graph.ShapeFromInfo(vi)
				if !ok {
					continue
				}
				checked++
				got, _ := s.Of(vi.GetName())
				if !agrees(got, want) {
					t.Errorf("%s: inferred %v, value_info %v", vi.GetName(), got, want)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no fixture has value_info to compare with")
	}
}

// inputSyms lists the symbolic dim names of the graph inputs.
func inputSyms(m *graph.Model) map[string]bool {
	out := map[string]bool{}
	for _, in := range m.Graph.Inputs {
		if t, ok := graph.ShapeFromInfo(in.Info); ok {
			for _, d := range t.Dims {
				if d.IsSymbolic() {
					out[d.Symbol()] = true
				}
			}
		}
	}
	return out
}

// complete reports whether a shape has a type, a rank, and no unknown
// dim (symbolic dims are fine).
func complete(t graph.TensorShape) bool {
	if !t.Ranked || t.Elem == 0 {
		return false
	}
	for _, d := range t.Dims {
		if d.IsUnknown() {
			return false
		}
	}
	return true
}

func agrees(got, want graph.TensorShape) bool {
	if got.Elem != want.Elem {
		return false
	}
	if !want.Ranked {
		return true
	}
	if got.Rank() != want.Rank() {
		return false
	}
	for i, d := range want.Dims {
		g := got.Dims[i]
		switch {
		case d.IsKnown() && g != d:
			return false
		case d.IsSymbolic() && g.IsUnknown():
			return false
		}
	}
	return true
}
