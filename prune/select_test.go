package prune

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

// twoGroups: conv a (8 channels) → conv b (4 channels) → conv c.
func twoGroups(t *testing.T) *Analysis { return chainOf(t, 8, 4) }

// chainOf: conv a (na channels) → conv b (nb channels) → conv c (2).
func chainOf(t *testing.T, na, nb int64) *Analysis {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", f32, -1, 3, 4, 4)
	c1 := b.Node("Conv", []string{x, initW(b, "wa", na, 3, 1, 1)})
	c2 := b.Node("Conv", []string{c1, initW(b, "wb", nb, na, 1, 1)})
	y := b.Node("Conv", []string{c2, initW(b, "wc", 2, nb, 1, 1)})
	b.Output(y, f32, -1, 2, 4, 4)
	_, a := analyzeBuilt(t, b)
	return a
}

// ascending scores: index i scores i (+ offset per group).
func ascending(a *Analysis, offset map[int]float64) map[int][]float64 {
	out := map[int][]float64{}
	for _, g := range a.Prunable() {
		s := make([]float64, g.Size)
		for i := range s {
			s[i] = float64(i) + offset[g.ID]
		}
		out[g.ID] = s
	}
	return out
}

func TestSelectLocal(t *testing.T) {
	a := twoGroups(t)
	p, err := a.Select(ascending(a, nil), Settings{Scope: "local", Ratio: 0.5, MaxLayerRatio: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	k := p.Keep()
	if len(k[0]) != 4 || k[0][0] != 4 || len(k[1]) != 2 || k[1][0] != 2 {
		t.Errorf("kept %v, want the top half of each group", k)
	}
}

func TestSelectGlobalMaxLayerAndRound(t *testing.T) {
	a := twoGroups(t)
	// Group 1 scores far below group 0: a global ranking takes it first,
	// down to its floor of ⌈0.2·4⌉ = 1.
	sc := ascending(a, map[int]float64{0: 100})
	p, err := a.Select(sc, Settings{Scope: "global", Ratio: 0.4, MaxLayerRatio: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	k := p.Keep()
	if len(k[1]) != 1 || len(k[0]) != 6 {
		t.Errorf("kept %d and %d, want 6 and 1 (5 of 12 removed, group 1 first)", len(k[0]), len(k[1]))
	}
	// Kept counts in multiples of 4: group 1 cannot move (4 is its floor
	// and its size), so 4 of 12 come from group 0.
	p, err = a.Select(sc, Settings{Scope: "global", Ratio: 0.3, MaxLayerRatio: 0.8, RoundTo: 4})
	if err != nil {
		t.Fatal(err)
	}
	for gid, kept := range p.Keep() {
		if len(kept)%4 != 0 && len(kept) != a.Groups[gid].Size {
			t.Errorf("group %d keeps %d, not a multiple of 4", gid, len(kept))
		}
	}
}

func TestSelectParamsTarget(t *testing.T) {
	a := chainOf(t, 64, 48)
	p, err := a.Select(ascending(a, nil), Settings{Scope: "global", Target: "params", Ratio: 0.3, MaxLayerRatio: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	got := float64(p.Before.Params-p.After.Params) / float64(p.Before.Params)
	if got < 0.295 || got > 0.305 {
		t.Errorf("params reduced by %.4f, want 0.30±0.005", got)
	}
	if _, err := a.Select(ascending(a, nil), Settings{Target: "params", Ratio: 0.95, MaxLayerRatio: 0.5}); !errors.Is(err, ErrTarget) {
		t.Errorf("unreachable target: %v", err)
	}
	for _, bad := range []Settings{{Ratio: 1, MaxLayerRatio: 0.8}, {Ratio: 0.5}, {Ratio: 0.5, MaxLayerRatio: 0.8, Scope: "x"}} {
		if _, err := a.Select(ascending(a, nil), bad); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestSelectParamsTargetTooCoarse: when no selection lands within 2
// points of a params target (a channel here is a third of the model),
// Select refuses instead of returning a far-off plan.
func TestSelectParamsTargetTooCoarse(t *testing.T) {
	a := chainOf(t, 2, 2)
	_, err := a.Select(ascending(a, nil), Settings{Scope: "global", Target: "params", Ratio: 0.1, MaxLayerRatio: 0.8})
	if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "closest selection") {
		t.Errorf("coarse target: %v", err)
	}
}

func TestPlanRoundTripAndMismatch(t *testing.T) {
	a := twoGroups(t)
	p, err := a.Select(ascending(a, nil), Settings{Ratio: 0.5, MaxLayerRatio: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlan(&buf, p); err != nil {
		t.Fatal(err)
	}
	q, err := ReadPlan(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(q); err != nil {
		t.Errorf("replayed plan rejected: %v", err)
	}
	q.Groups[0].Members[0].Axis = 1
	if err := a.Check(q); !errors.Is(err, ErrPlanMismatch) {
		t.Errorf("changed member accepted: %v", err)
	}
	other := twoGroups(t)
	other.Groups = other.Groups[:1]
	if err := other.Check(p); !errors.Is(err, ErrPlanMismatch) {
		t.Errorf("plan for another model accepted: %v", err)
	}
}

func TestIndexMapJSON(t *testing.T) {
	for _, m := range []IndexMap{{0, 1, 2, 3}, {0, 0, 0, 1, 1, 1}, {-1, -1, 0, 1, 5, 2}, {}} {
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back IndexMap
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(m) {
			t.Errorf("%v → %s → %v", m, b, back)
		}
	}
}
