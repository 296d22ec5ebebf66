package ort

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// TestFixturesMatchReference runs every fixture model on its recorded
// inputs and compares with the outputs PyTorch recorded for them
// (fixtures/ref), through both session constructors and in batches of
// one row.
func TestFixturesMatchReference(t *testing.T) {
	const root = "../fixtures"
	data, err := os.ReadFile(filepath.Join(root, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Name       string `json:"name"`
		Path       string `json:"path"`
		RefInputs  string `json:"ref_inputs"`
		RefOutputs string `json:"ref_outputs"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no fixtures")
	}
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			in, err := tensor.ReadNpz(filepath.Join(root, e.RefInputs))
			if err != nil {
				t.Fatal(err)
			}
			want, err := tensor.ReadNpz(filepath.Join(root, e.RefOutputs))
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSessionFromFile(filepath.Join(root, e.Path), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var names []string
			for _, o := range s.Outputs() {
				names = append(names, o.Name)
			}
			got, err := s.Run(ctx, in, names)
			if err != nil {
				t.Fatal(err)
			}
			batched, err := s.RunBatched(ctx, in, names, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range names {
				w, ok := want[name]
				if !ok {
					t.Fatalf("reference has no output %q", name)
				}
				for _, g := range []tensor.Dense{got[i], batched[i]} {
					if d := maxRelDiff(t, g, w); d > 1e-3 {
						t.Errorf("output %q: max |diff| / max(1, |ref|) = %g", name, d)
					}
				}
			}
		})
	}
}

// maxRelDiff is max |a−b| / max(1, max|b|), after checking shapes.
func maxRelDiff(t *testing.T, a, b tensor.Dense) float64 {
	t.Helper()
	if tensor.FormatShape(a.Shape) != tensor.FormatShape(b.Shape) {
		t.Fatalf("shape %v, reference %v", a.Shape, b.Shape)
	}
	x, _ := a.Float64s()
	y, _ := b.Float64s()
	scale, diff := 1.0, 0.0
	for i := range y {
		scale = math.Max(scale, math.Abs(y[i]))
		diff = math.Max(diff, math.Abs(x[i]-y[i]))
		if math.IsNaN(x[i]) != math.IsNaN(y[i]) {
			return math.Inf(1)
		}
	}
	return diff / scale
}
