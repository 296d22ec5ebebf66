package check

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func top(v float64) *Number { n := Number(v); return &n }

func TestEvaluateGates(t *testing.T) {
	outs := []OutputResult{
		{Name: "logits", Metrics: Metrics{Elements: 10, Cosine: 0.995, Top1: top(0.9), Rows: 10, AllCloseViolations: 0}},
		{Name: "aux", Metrics: Metrics{Elements: 4, Cosine: 0.98, AllCloseViolations: 2}},
	}
	acc := &Accuracy{Output: "logits", Labels: 10, Ref: 0.9, Cand: 0.85, DropPoints: 5}
	th := Thresholds{AllClose: &AllClose{ATol: 1e-3}, MinCos: new(0.99), MinTop1: new(0.8), MaxAccDrop: new(1.0)}
	gates := evaluate(th, outs, acc, nil)
	type key struct{ gate, out string }
	want := map[key]bool{
		{GateAllClose, "logits"}: true, {GateAllClose, "aux"}: false,
		{GateMinCos, "logits"}: true, {GateMinCos, "aux"}: false,
		{GateMinTop1, "logits"}: true, {GateMaxAccDrop, "logits"}: false,
	}
	if len(gates) != len(want) {
		t.Fatalf("%d gates: %+v", len(gates), gates)
	}
	for _, g := range gates {
		pass, ok := want[key{g.Gate, g.Output}]
		if !ok || pass != g.Pass {
			t.Errorf("gate %+v, want pass=%v (known %v)", g, pass, ok)
		}
	}
	r := &Result{Gates: gates}
	err := r.err()
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{`allclose on "aux"`, `min-cos on "aux"`, `max-acc-drop on "logits"`, "drop 5 > 1 points"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if strings.Contains(err.Error(), `min-top1`) {
		t.Errorf("passing gate named in %q", err)
	}
}

func TestGatesNonFinite(t *testing.T) {
	nan := Number(math.NaN())
	outs := []OutputResult{{Name: "y", Metrics: Metrics{Elements: 2, Cosine: nan, MaxAbs: nan, Top1: top(1), Rows: 1, CandNaN: 1, AllCloseViolations: 1}}}
	th := Thresholds{AllClose: &AllClose{ATol: 1}, MinCos: new(-1.0), MinTop1: new(0.0)}
	for _, g := range evaluate(th, outs, nil, nil) {
		if g.Pass {
			t.Errorf("gate %s passed with a NaN candidate", g.Gate)
		}
	}
	// min-top1 with no classifying output fails rather than passing vacuously.
	gates := evaluate(Thresholds{MinTop1: new(0.5)}, []OutputResult{{Name: "r", Metrics: Metrics{}}}, nil, nil)
	if len(gates) != 1 || gates[0].Pass || !strings.Contains(gates[0].Detail, "class axis") {
		t.Errorf("gates %+v", gates)
	}
}

func TestThresholdsValidate(t *testing.T) {
	bad := []Thresholds{
		{AllClose: &AllClose{ATol: -1}},
		{AllClose: &AllClose{RTol: math.NaN()}},
		{AllClose: &AllClose{ATol: math.Inf(1)}},
		{MinCos: new(1.5)},
		{MinTop1: new(-0.1)},
		{MaxAccDrop: new(math.NaN())},
	}
	for _, th := range bad {
		if th.Validate() == nil {
			t.Errorf("%+v accepted", th)
		}
	}
	if err := DefaultThresholds().Validate(); err != nil {
		t.Error(err)
	}
}
