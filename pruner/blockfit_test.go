package pruner

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// On the trained ViT at 70% of the parameters removed, training each
// block by gradient toward the unpruned model (FitBlocks) after the
// least-squares fit brings the outputs on the 1000 test images closer
// to the dense model's than the least-squares fit alone, at the same
// plan: their softmax (the last block, at the logits, is fitted by the
// KL) and, less so, the logits themselves. It keeps the accuracy at
// least as high. The fit is local: every block sees the pruned model's
// own input and matches its own end.
func TestFitBlocksBeatsLeastSquaresViT(t *testing.T) {
	if testing.Short() {
		t.Skip("two prunes with calibration and a gradient block fit: run without -short")
	}
	dense, err := graph.Load(fixtures + "models/fmnist_vit_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	denseOut := testOutputs(t, dense)
	run := func(steps int) (acc float64, score HeldOutScore, out *Outcome) {
		m, err := graph.Load(fixtures + "models/fmnist_vit_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		s := prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1, HeadDim: true, PruneEmbed: true}
		out, err = RunSteps(context.Background(), m, prune.Options{HeadDim: true}, Config{Settings: s,
			Calib: fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, Allocate: "sensitivity", FitBlocks: steps}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return testAccuracy(t, m), CompareOutputs(denseOut, testOutputs(t, m), 10), out
	}
	lsAcc, ls, lsOut := run(0)
	acc, fit, out := run(200)
	t.Logf("least squares: accuracy %.3f, KL %.4f, relative output error %.4f; with the block fit: %.3f, %.4f, %.4f; notes %q",
		lsAcc, ls.KL, ls.RelMSE, acc, fit.KL, fit.RelMSE, out.Notes)
	if a, b := lsOut.Plan.After.Params, out.Plan.After.Params; a != b {
		t.Fatalf("different plans: %d and %d parameters after", a, b)
	}
	if fit.KL > 0.8*ls.KL {
		t.Errorf("KL toward the dense softmax %.4f with the block fit, want at least 20%% below least squares' %.4f", fit.KL, ls.KL)
	}
	if fit.RelMSE > ls.RelMSE {
		t.Errorf("relative output error %.4f with the block fit, above least squares' %.4f", fit.RelMSE, ls.RelMSE)
	}
	if acc < lsAcc {
		t.Errorf("accuracy %.3f with the block fit, below least squares' %.3f", acc, lsAcc)
	}
	if o := out.Plan.Settings.Options; o == nil || o.FitBlocks != 200 {
		t.Errorf("the plan does not record the block fit: %+v", o)
	}
	fitted := false
	for _, n := range out.Notes {
		if strings.HasPrefix(n, "fit blocks: 8 of 8 blocks fitted") {
			fitted = true
		}
	}
	if !fitted {
		t.Errorf("want the ViT's 8 blocks (the patch embedding with the first attention, then attention and MLP of 4 layers, the last MLP with the final norm and the head) fitted; notes %q", out.Notes)
	}
}

// --fit-blocks refines the least-squares fit: without --reconstruct or
// calibration data it is refused, naming the flag; so is a model whose
// data feeds several inputs (blocks are cut from one), on a fixed path
// and on the search, before pruning.
func TestFitBlocksNeedsReconstruct(t *testing.T) {
	m, err := graph.Load(fixtures + "models/fmnist_vit_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s := prune.Settings{Criterion: "magnitude", Target: "params", Ratio: 0.3, MaxLayerRatio: 0.8, Seed: 1}
	_, err = RunSteps(context.Background(), m, prune.Options{}, Config{Settings: s, Calib: fixtures + "data/fmnist_calib_x.npy", FitBlocks: 10}, 1)
	if err == nil || !strings.Contains(err.Error(), "--fit-blocks") {
		t.Fatalf("want a refusal naming --fit-blocks, got %v", err)
	}
	// A decoding step whose cache is data: seven inputs the .npz feeds.
	// (Inputs pare fills beside a .npy of token ids do not count:
	// TestFitBlocksBakesFilledInputs in cmd/pare.)
	dec, err := graph.Load(fixtures + "models/llama_kv_nano_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	before, err := graph.Count(dec)
	if err != nil {
		t.Fatal(err)
	}
	// The refusal comes before anything is pruned.
	several := Config{Settings: s, Calib: fixtures + "ref/llama_kv_nano_op17.inputs.npz", Reconstruct: true, FitBlocks: 10}
	several.Settings.Criterion = "obs"
	want := "--fit-blocks: the model takes 7 inputs the data feeds"
	if _, err = RunSteps(context.Background(), dec, prune.Options{}, several, 1); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("fixed path on a model of 7 data inputs: want a refusal %q, got %v", want, err)
	}
	if _, _, err = RunSearch(context.Background(), dec, prune.Options{}, several, SearchConfig{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("search on a model of 7 data inputs: want a refusal %q, got %v", want, err)
	}
	if after, err := graph.Count(dec); err != nil || after.Params != before.Params {
		t.Errorf("the refused model changed: %d → %d parameters (%v)", before.Params, after.Params, err)
	}
}

// The default's block fit takes more steps on more calibration samples,
// never fewer than AutoFitSteps, and no more than the budget allows (the
// larger one from AutoFitLargeSamples samples); a model whose
// AutoFitSteps alone are past the budget is skipped with a note naming
// the budget, and a model of several inputs silently. The
// MACs are counted at the calibration sample's size: a decoder's
// 64-token windows, not one token.
func TestAutoFitSteps(t *testing.T) {
	var macs int64 = 700_000
	capped := int(AutoFitLargeBudget / float64(macs*recovery.DefaultBlockFitBatch))
	for _, tc := range []struct {
		macs          int64
		samples, want int
	}{
		{macs, 64, AutoFitSteps},
		{macs, 256, AutoFitSteps}, // 40 passes of 256 are 160 steps
		{macs, 1024, 640},
		{macs, 1 << 20, capped},
		{5_000_000, 256, AutoFitSteps},
		{5_000_000, 1024, 640}, // 312 within the smaller budget
	} {
		got, note := fitStepsWithin(tc.macs, tc.samples, fitBudget(tc.samples))
		if got != tc.want || note != "" {
			t.Errorf("%d MACs, %d samples: %d steps (note %q), want %d", tc.macs, tc.samples, got, note, tc.want)
		}
	}
	if got, note := fitStepsWithin(10_000_000, 256, fitBudget(256)); got != 0 || !strings.Contains(note, "past the budget of 1e+11") {
		t.Errorf("10M MACs per sample: %d steps, note %q; want it skipped with a note", got, note)
	}
	if got, note := fitStepsWithin(50_000_000, 1024, fitBudget(1024)); got != 0 || !strings.Contains(note, "past the budget of 5e+11") {
		t.Errorf("50M MACs per sample on 1024 samples: %d steps, note %q; want it skipped with a note", got, note)
	}
	open := func(model, data string) (*graph.Model, *calib.Source) {
		m, err := graph.Load(fixtures + "models/" + model)
		if err != nil {
			t.Fatal(err)
		}
		src, err := calib.Open(fixtures+"data/"+data, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return m, src
	}
	vit, src := open("fmnist_vit_op17.onnx", "fmnist_unlabelled_x.npy")
	c, err := graph.Count(vit)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fitStepsWithin(c.MACs, 1024, fitBudget(1024)); got != 640 {
		t.Fatalf("the dense ViT (%d MACs) should take 640 steps on 1024 samples, got %d", c.MACs, got)
	}
	if got, note := autoFitSteps(vit, src); got != 640 || note != "" {
		t.Errorf("ViT on 1024 images: %d steps, note %q; want 640", got, note)
	}
	dec, ids := open("llama_char_op17.onnx", "llama_calib_ids.npy")
	perToken, err := graph.Count(dec) // symbolic dims taken as 1: one token
	if err != nil {
		t.Fatal(err)
	}
	perWindow, err := recovery.SampleMACs(dec, ids)
	if err != nil {
		t.Fatal(err)
	}
	if perWindow < 50*perToken.MACs {
		t.Errorf("the decoder's 64-token window counts %d MACs, one token %d: the window's size was not used", perWindow, perToken.MACs)
	}
	want, _ := fitStepsWithin(perWindow, ids.Len(), fitBudget(ids.Len()))
	if got, _ := autoFitSteps(dec, ids); got != want {
		t.Errorf("decoder: %d steps, want %d for %d MACs per window", got, want, perWindow)
	}
	several, err := graph.Load(fixtures + "models/llama_masked_nano_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if got, note := autoFitSteps(several, ids); got != 0 || note != "" {
		t.Errorf("a model of 3 inputs: %d steps, note %q; want a silent skip", got, note)
	}
}

// With the model output in the inner blocks' loss (--fit-output), each
// inner block trains through the layers after it: the fit still beats
// least squares on the test images' outputs, says how many blocks
// weighed the output, and the plan records the weight.
func TestFitOutputViT(t *testing.T) {
	if testing.Short() {
		t.Skip("two prunes with calibration and a gradient block fit: run without -short")
	}
	dense, err := graph.Load(fixtures + "models/fmnist_vit_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	denseOut := testOutputs(t, dense)
	run := func(steps int, w float64) (HeldOutScore, *Outcome) {
		m, err := graph.Load(fixtures + "models/fmnist_vit_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		s := prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1, HeadDim: true, PruneEmbed: true}
		out, err := RunSteps(context.Background(), m, prune.Options{HeadDim: true}, Config{Settings: s,
			Calib: fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, Allocate: "sensitivity", FitBlocks: steps, FitOutput: w}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return CompareOutputs(denseOut, testOutputs(t, m), 10), out
	}
	ls, _ := run(0, 0)
	fit, out := run(40, 0.5)
	t.Logf("least squares: KL %.4f, relative output error %.4f; fit with the output term: %.4f, %.4f; notes %q", ls.KL, ls.RelMSE, fit.KL, fit.RelMSE, out.Notes)
	if fit.KL > 0.9*ls.KL {
		t.Errorf("KL toward the dense softmax %.4f with the fit, want at least 10%% below least squares' %.4f", fit.KL, ls.KL)
	}
	if o := out.Plan.Settings.Options; o == nil || o.FitOutput != 0.5 {
		t.Errorf("the plan does not record the output weight: %+v", o)
	}
	if !slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, "7 inner blocks weighed the model output (KL) at 0.5") }) {
		t.Errorf("want the ViT's 7 inner blocks (all but the one ending at the logits) to weigh the output; notes %q", out.Notes)
	}
}

// The default search weighs the model output in its block fit from
// AutoFitLargeSamples calibration samples, within its budget, and
// records the weight in the plan; on fewer samples it does not, and says
// so. Past the budget it cuts the default's steps to keep the term, down
// to AutoFitSteps; below that, or on steps the user gave, it leaves the
// term out with a note naming the budget. An explicit weight, 0
// included, is kept as given.
func TestAutoFitOutput(t *testing.T) {
	for _, tc := range []struct {
		macs           int64
		samples, steps int
		cut            bool // the steps are the default's, to cut to the budget
		want           float64
		wantSteps      int
		note           string
	}{
		{1_000_000, 1024, 640, true, AutoFitOutputWeight, 640, ""},
		{1_000_000, 1023, 640, true, 0, 640, "below 1024 calibration samples (1023 given)"},
		{1_000_000, 256, 200, true, 0, 200, "below 1024 calibration samples (256 given)"},
		{20_000_000, 1024, 640, true, AutoFitOutputWeight, 390, ""}, // 5e11 / (2e7 × 64)
		{20_000_000, 1024, 640, false, 0, 640, "past the budget of 5e+11"},
		{50_000_000, 1024, 640, true, 0, 640, "past the budget of 5e+11"}, // 156 steps would fit
	} {
		got, steps, note := outputWeightFor(tc.macs, tc.samples, tc.steps, tc.cut)
		if got != tc.want || steps != tc.wantSteps || tc.note == "" && note != "" || !strings.Contains(note, tc.note) {
			t.Errorf("%d MACs, %d samples, %d steps (cut %v): weight %g and %d steps (note %q), want %g and %d (note with %q)",
				tc.macs, tc.samples, tc.steps, tc.cut, got, steps, note, tc.want, tc.wantSteps, tc.note)
		}
	}
	if testing.Short() {
		t.Skip("three default searches with a block fit: run without -short")
	}
	search := func(data string, weight float64) *Outcome {
		m, err := graph.Load(fixtures + "models/fmnist_opnet_op12.onnx")
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Settings: searchSettings(0.5), Calib: fixtures + "data/" + data, Reconstruct: true, FitBlocks: 5, FitOutput: weight}
		out, _, err := RunSearch(context.Background(), m, prune.Options{}, cfg, SearchConfig{Candidates: "one-step"})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	noted := func(out *Outcome, what string) bool {
		return slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, what) })
	}
	for _, tc := range []struct {
		data   string
		weight float64 // Config.FitOutput: below 0 the default's choice
		want   float64
		note   string // a note the default leaves ("": none on the term)
	}{
		{"fmnist_unlabelled_x.npy", -1, AutoFitOutputWeight, ""},
		{"fmnist_calib_x.npy", -1, 0, "output term off by default below 1024 calibration samples (256 given)"},
		{"fmnist_unlabelled_x.npy", 0, 0, ""},
	} {
		out := search(tc.data, tc.weight)
		o := out.Plan.Settings.Options
		if o == nil || o.FitBlocks != 5 || o.FitOutput != tc.want || noted(out, "weighed the model output") != (tc.want > 0) {
			t.Errorf("%s, FitOutput %g: plan %+v, notes %q; want the fit weighing the output at %g", tc.data, tc.weight, o, out.Notes, tc.want)
		}
		if tc.note != "" && !noted(out, tc.note) || tc.note == "" && noted(out, "output term") {
			t.Errorf("%s, FitOutput %g: notes %q; want a note on the output term %q", tc.data, tc.weight, out.Notes, tc.note)
		}
	}
}
