package pipeline

import (
	"testing"
)

// FuzzRecipe feeds arbitrary text to Parse: it must never panic or hang,
// and a recipe it accepts has steps, and a grid size that is computed
// without building the grid.
func FuzzRecipe(f *testing.F) {
	for _, s := range []string{
		"steps:\n  - prune: {ratio: 0.3}\n  - bench: {batch: \"1\"}\n",
		"steps:\n  - prune: {ratio: 0.3}\nsweep:\n  prune.ratio: [0.1, 0.3]\n  prune.criterion: [magnitude, random]\n",
		"models: [a.onnx, ../b.onnx]\nsteps:\n  - prune: {}\ngates:\n  max-acc-drop: 1\n",
		"steps: [{prune: {ratio: &a 0.3}}, {bench: {batch: *a}}]\n",
		"steps:\n  - nope: {x: 1}\n",
		"{{{{",
	} {
		f.Add([]byte(s))
	}
	steps := testSteps()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("r.yaml", b, steps)
		if err != nil {
			return
		}
		if len(r.Steps) == 0 {
			t.Fatalf("accepted a recipe without steps: %q", b)
		}
		if n, ok := r.gridSize(); ok && len(r.settings()) > MaxSweepPoints {
			t.Fatalf("grid size %s within the limit but %d settings", n, len(r.settings()))
		}
	})
}
