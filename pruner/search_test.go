package pruner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// searchSettings are the allocation tables' settings (docs/RESULTS.md,
// "Allocation, compensation and steps").
func searchSettings(ratio float64) prune.Settings {
	return prune.Settings{Criterion: "obs", Scope: "global", Target: "params", Ratio: ratio, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1}
}

// The search picks the candidate with the lowest held-out relative
// output error, and the model it leaves is that candidate's path redone
// on every calibration sample (a one-step path: the same model as a
// fixed run of it) or the candidate's own copy (a multi-step path). Not under -short (four prunes and their accuracies); cmd/pare's
// TestPruneDefaultWithCalib checks the pick there.
func TestSearchPicksLowestHeldOutError(t *testing.T) {
	if testing.Short() {
		t.Skip("four prunes of a trained ResNet: the full suite runs it")
	}
	m, err := graph.Load(fixtures + "models/" + searchModel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Settings: searchSettings(searchRatio), Calib: fixtures + "data/fmnist_calib_x.npy", Reconstruct: true}
	_, s, err := RunSearch(context.Background(), m, prune.Options{}, cfg, SearchConfig{KeepModels: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.FitSamples != 192 || s.HeldOut != 64 {
		t.Errorf("split %d+%d, want 192+64", s.FitSamples, s.HeldOut)
	}
	picked := s.Candidates[s.Picked]
	for _, c := range s.Candidates {
		t.Logf("%s: removed %.3f, held-out rel. error %.4f, KL %.4f, agreement %.3f, test %.3f", c.Name, c.Removed, c.Score.RelMSE, c.Score.KL, c.Score.Agreement, testAccuracy(t, c.Model))
		if c.Err != "" {
			t.Errorf("%s failed: %s", c.Name, c.Err)
		} else if c.Score.RelMSE < picked.Score.RelMSE {
			t.Errorf("picked %s (rel. error %g) over %s (rel. error %g)", picked.Name, picked.Score.RelMSE, c.Name, c.Score.RelMSE)
		}
	}
	fixed := picked.Model // a multi-step pick is kept as validated
	if picked.Steps == 1 {
		if fixed, err = graph.Load(fixtures + "models/" + searchModel); err != nil {
			t.Fatal(err)
		}
		if _, err := runCandidate(context.Background(), fixed, prune.Options{}, cfg, picked.Candidate, s.FitSamples+s.HeldOut); err != nil {
			t.Fatal(err)
		}
	}
	got, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := graph.Count(fixed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Params != want.Params {
		t.Errorf("kept model has %d params, the picked path run on every sample %d", got.Params, want.Params)
	}
	if a, b := testAccuracy(t, m), testAccuracy(t, fixed); a != b {
		t.Errorf("kept model's accuracy %.4f, the picked path's run on every sample %.4f", a, b)
	}
}

// searchModel and searchRatio are where the fixed default path fell
// short of the table's best by the most among the CNNs
// (docs/RESULTS.md, "Default against best").
const (
	searchModel = "fmnist_resnet_bn_op17.onnx"
	searchRatio = 0.7
)

// "auto" tries the multi-step candidates up to SearchFullParams
// parameters and keeps to the one-step ones past it, saying so; "full"
// and "one-step" hold whatever the size; anything else is refused.
func TestSearchModeBySize(t *testing.T) {
	m, err := graph.Load(fixtures + "models/" + searchModel)
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int64) { SearchFullParams = n }(SearchFullParams)
	for _, tc := range []struct {
		mode    string
		limit   int64
		oneStep bool
	}{
		{"auto", c.Params, false},
		{"", c.Params, false},
		{"auto", c.Params - 1, true},
		{"full", c.Params - 1, false},
		{"one-step", c.Params, true},
	} {
		SearchFullParams = tc.limit
		sc := SearchConfig{Candidates: tc.mode}
		note, err := sc.resolve(m)
		if err != nil {
			t.Fatalf("%q: %v", tc.mode, err)
		}
		if sc.OneStep != tc.oneStep {
			t.Errorf("%q with %d params, limit %d: one-step %v, want %v", tc.mode, c.Params, tc.limit, sc.OneStep, tc.oneStep)
		}
		if said := strings.Contains(note, "--search full"); said != (tc.oneStep && tc.mode == "auto") {
			t.Errorf("%q with limit %d: note %q", tc.mode, tc.limit, note)
		}
		cands, err := SearchCandidates(m, prune.Options{}, sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, cd := range cands {
			if tc.oneStep && cd.Steps != 1 {
				t.Errorf("%q: candidate %s", tc.mode, cd.Name)
			}
		}
	}
	sc := SearchConfig{Candidates: "sideways"}
	if _, err := sc.resolve(m); !errors.Is(err, prune.ErrInvalidOption) {
		t.Errorf("--search sideways: %v, want an invalid option", err)
	}
}

// A candidate that removed less than asked is ranked after every one
// that reached the target, however closely it follows the dense model;
// among those that all fall short, or all reach it, the held-out error
// decides. A latency target is not counted.
func TestSearchRanksShortCandidatesLast(t *testing.T) {
	s := prune.Settings{Target: "params", Ratio: 0.7}
	short := Tried{Removed: 0.678, Score: HeldOutScore{RelMSE: 0.048}}
	reached := Tried{Removed: 0.695, Score: HeldOutScore{RelMSE: 0.060}}
	over := Tried{Removed: 0.712, Score: HeldOutScore{RelMSE: 0.055}}
	if betterCandidate(short, reached, s) || !betterCandidate(reached, short, s) {
		t.Error("a candidate 2.2 points short beat one within the shortfall")
	}
	if !betterCandidate(over, reached, s) {
		t.Error("between two that reach the target, the lower error should win")
	}
	shorter := Tried{Removed: 0.6, Score: HeldOutScore{RelMSE: 0.02}}
	if !betterCandidate(shorter, short, s) {
		t.Error("between two that fall short, the lower error should win")
	}
	lat := prune.Settings{Target: "latency", Ratio: 0.7}
	if !betterCandidate(short, reached, lat) {
		t.Error("a latency target is not counted in params: the error decides")
	}
	sr := &Search{Picked: 1, Candidates: []Tried{{Candidate: Candidate{Name: "a"}, Removed: 0.678}, {Candidate: Candidate{Name: "b"}, Removed: 0.70}}}
	notes := sr.shortNotes(s)
	if len(notes) != 1 || !strings.Contains(notes[0], "a ranked last: it removed 67.8% of params, short of the 70.0% asked") {
		t.Errorf("notes %q", notes)
	}
}
