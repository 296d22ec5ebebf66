package pruner

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// TestWandaNotesReachTheOutcome: on a Llama layer whose projections are
// MatMulNBits (no float layer to take statistics of), wanda scores the
// head and MLP groups by magnitude, and the notes it makes while scoring
// reach the run's outcome (the prune report), once per group.
func TestWandaNotesReachTheOutcome(t *testing.T) {
	const model = "llama_layer_gqa_nbits"
	m, err := graph.Load(fixtures + "contrib/models/" + model + ".onnx")
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DryRun: true, Calib: fixtures + "contrib/ref/" + model + ".inputs.npz",
		Settings: prune.Settings{Criterion: "wanda", Scope: "global", Target: "channels", MaxLayerRatio: 0.8, Ratio: 0.3, Seed: 1}}
	out, err := Run(context.Background(), m, an, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, n := range out.Notes {
		if strings.HasPrefix(n, "wanda: ") {
			notes = append(notes, n)
		}
	}
	t.Logf("%q", notes)
	for _, want := range []string{"(q_proj): no layer with statistics, scored by magnitude", "(gate_proj): no layer with statistics, scored by magnitude"} {
		if n := len(slices.DeleteFunc(slices.Clone(notes), func(s string) bool { return !strings.HasSuffix(s, want) })); n != 1 {
			t.Errorf("%d wanda notes end in %q: %q", n, want, notes)
		}
	}
}
