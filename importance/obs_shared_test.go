package importance

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// On the trained Llama-shaped decoder, the projections that read the
// same normalised stream (Q, K and V; gate and up) share one OBS inverse,
// and every shared inverse equals the one the layer's own Hessian gives.
func TestOBSSharesInversesAcrossLayersReadingOneInput(t *testing.T) {
	m, an, d := trainedDecoder(t)
	ctx := context.Background()
	o, err := NewOBS(ctx, m, an, d, 0.01)
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	byInput := map[string][]string{}
	for _, name := range sortedNames(o.hinv) {
		in := o.layers[name].Input()
		byInput[in] = append(byInput[in], name)
	}
	shared := 0
	for in, names := range byInput {
		first := o.hinv[names[0]]
		for _, name := range names[1:] {
			if &o.hinv[name][0] != &first[0] {
				t.Errorf("%s and %s read %s but hold separate inverses", names[0], name, in)
			}
			shared++
		}
	}
	// A block has Q, K, V and gate, up: at least three layers per block
	// reuse another's inverse.
	if shared < 3 {
		t.Fatalf("%d layers share an inverse (inputs: %v)", shared, byInput)
	}
	for _, name := range sortedNames(o.hinv) {
		l := o.layers[name]
		hs, _, err := Hessians(ctx, m, d, map[string]*calib.Layer{name: l})
		if err != nil {
			t.Fatal(err)
		}
		own, err := hs[name].TakeDampedInverse(0.01)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range own {
			if got := o.hinv[name][i]; got != v {
				t.Fatalf("%s: shared inverse[%d] = %v, its own %v", name, i, got, v)
			}
		}
	}
}

// Without --prune-embed, selection never cuts the decoder's residual
// width, so OBS measures no layer for it: the projections that read the
// stream are left out, and the embed group gets magnitude scores.
func TestOBSSkipsGroupsSelectionLeavesWhole(t *testing.T) {
	m, an, d := trainedDecoder(t)
	ctx := context.Background()
	all, err := NewOBS(ctx, m, an, d, 0.01)
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	some, err := NewOBSFor(ctx, m, an, d, 0.01, prune.Settings{}.Selects)
	if err != nil {
		t.Fatal(err)
	}
	var embed *prune.Group
	for _, g := range an.Prunable() {
		if g.Kind == prune.KindEmbed {
			embed = g
		}
	}
	if embed == nil {
		t.Fatal("no embed group")
	}
	if len(some.hinv) == 0 || len(some.hinv) >= len(all.hinv) {
		t.Fatalf("%d layers measured for the selectable groups, %d for all", len(some.hinv), len(all.hinv))
	}
	for name := range consumerLayersOf(an, false, func(g *prune.Group) bool { return g == embed }, true) {
		if some.hinv[name] != nil && consumerLayersOf(an, false, prune.Settings{}.Selects, true)[name] == nil {
			t.Errorf("%s reads only the residual stream but was measured", name)
		}
	}
	got, err := some.Score(an.Graph(), embed)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Magnitude{P: 2}.Score(an.Graph(), embed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("embed score %d: %v, magnitude %v", i, got[i], want[i])
		}
	}
}

// trainedDecoder loads the trained Llama-shaped decoder, its analysis
// and 16 of its calibration windows.
func trainedDecoder(t *testing.T) (*graph.Model, *prune.Analysis, Data) {
	t.Helper()
	m, err := graph.Load("../fixtures/models/llama_char_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open("../fixtures/data/llama_calib_ids.npy", m, 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return m, an, Data{Src: src}
}
