package importance

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/prune"
)

// greedyFixture builds consumers over inputs whose channel 3 nearly
// repeats channel 2: a, b share one inverse (two layers reading the same
// rows, as Q and K do), c reads the same channels through other rows.
// Each channel feeds two columns.
func greedyFixture(t *testing.T) (states []*consumerState, w0 [][]float64, hinv0 [][]float64) {
	t.Helper()
	const channels, per, n = 6, 2, 200
	cols := channels * per
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, n*cols)
	for r := range n {
		for j := range cols {
			x[r*cols+j] = rng.NormFloat64()
		}
		for k := range per {
			x[r*cols+3*per+k] = x[r*cols+2*per+k] + 0.05*rng.NormFloat64()
		}
	}
	h := make([]float64, cols*cols)
	for r := range n {
		for i := range cols {
			for j := range cols {
				h[i*cols+j] += 2 * x[r*cols+i] * x[r*cols+j] / n
			}
		}
	}
	inv, err := calib.DampedInverseRows(h, cols, prune.DefaultDamping)
	if err != nil {
		t.Fatal(err)
	}
	colsOf := make([][]int, channels)
	for i := range colsOf {
		for k := range per {
			colsOf[i] = append(colsOf[i], i*per+k)
		}
	}
	shared := &sharedInverse{h: append([]float64(nil), inv...), n: cols}
	own := &sharedInverse{h: append([]float64(nil), inv...), n: cols}
	for _, spec := range []struct {
		rows int
		inv  *sharedInverse
	}{{5, shared}, {3, shared}, {4, own}} {
		w := make([]float64, spec.rows*cols)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		w0 = append(w0, append([]float64(nil), w...))
		hinv0 = append(hinv0, inv)
		states = append(states, &consumerState{w: w, rows: spec.rows, cols: cols, hinv: spec.inv, colsOf: colsOf})
	}
	return states, w0, hinv0
}

// The marginal costs of a greedy order add up, for every prefix, to the
// OBS cost of removing that prefix at once from the original weights:
// the order's scores are exact errors, not estimates.
func TestGreedyOrderPrefixCostsAreJointCosts(t *testing.T) {
	states, w0, hinv0 := greedyFixture(t)
	order, marginal, err := greedyOrder(context.Background(), states, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 6 {
		t.Fatalf("order %v covers %d of 6 channels", order, len(order))
	}
	sum := 0.0
	var q []int
	for k, i := range order {
		sum += marginal[k]
		q = append(q, states[0].colsOf[i]...)
		joint := 0.0
		for s := range states {
			c, err := prune.OBSCost(w0[s], states[s].rows, states[s].cols, hinv0[s], q)
			if err != nil {
				t.Fatal(err)
			}
			joint += c
		}
		if math.Abs(sum-joint) > 1e-8*math.Max(1, joint) {
			t.Fatalf("prefix %v: summed marginals %.10g, joint OBS cost %.10g", order[:k+1], sum, joint)
		}
	}
}

// Two channels that stand in for each other both look cheap one at a
// time; greedily, the second costs what losing both does.
func TestGreedyOrderPricesRedundantPairs(t *testing.T) {
	states, w0, hinv0 := greedyFixture(t)
	alone := func(i int) float64 {
		c := 0.0
		for s := range states {
			v, err := prune.OBSCost(w0[s], states[s].rows, states[s].cols, hinv0[s], states[s].colsOf[i])
			if err != nil {
				t.Fatal(err)
			}
			c += v
		}
		return c
	}
	others := math.Inf(1)
	for _, i := range []int{0, 1, 4, 5} {
		others = math.Min(others, alone(i))
	}
	if a, b := alone(2), alone(3); a > others/10 || b > others/10 {
		t.Fatalf("fixture: channels 2 and 3 alone cost %.4g and %.4g, the cheapest other %.4g", a, b, others)
	}
	order, marginal, err := greedyOrder(context.Background(), states, 6)
	if err != nil {
		t.Fatal(err)
	}
	at := map[int]int{}
	for k, i := range order {
		at[i] = k
	}
	first, second := min(at[2], at[3]), max(at[2], at[3])
	if first != 0 {
		t.Fatalf("order %v: one of the pair should go first", order)
	}
	if marginal[second] < others/2 {
		t.Fatalf("order %v, marginals %v: the second of the pair costs %.4g, less than half the cheapest other channel alone (%.4g)",
			order, marginal, marginal[second], others)
	}
}

// A group past the greedy budget keeps the one-shot scores, and the
// note names it: on the trained decoder no group passes the default
// budget, and with a budget of one multiply-add every group does.
func TestGreedyBudgetFallsBackToOneShotWithANote(t *testing.T) {
	m, an, d := trainedDecoder(t)
	o, err := NewOBS(context.Background(), m, an, d, 0.01)
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	o.Greedy = true
	groups := an.Prunable()
	for _, grp := range groups {
		if _, err := o.Score(m.Graph, grp); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.GreedyNote(); n != "" {
		t.Fatalf("default budget: %q", n)
	}
	o.budget = 1
	ordered, first := 0, ""
	for _, grp := range groups {
		got, err := o.Score(m.Graph, grp)
		if err != nil {
			t.Fatal(err)
		}
		want, err := o.oneShotScore(m.Graph, grp)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("group %d (%s) past the budget: scores %v, one-shot %v", grp.ID, grp.Name, got, want)
		}
		if o.greedyConsumers(grp) != nil {
			if ordered == 0 {
				first = grp.Name
			}
			ordered++
		}
	}
	note := o.GreedyNote()
	t.Log(note)
	if ordered < 2 || !strings.HasPrefix(note, fmt.Sprintf("%d groups scored one-shot", ordered)) || !strings.Contains(note, first) {
		t.Fatalf("%d groups with statistics; note %q", ordered, note)
	}
}
