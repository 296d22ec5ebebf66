package importance

import (
	"context"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// The orders of the obs criterion (pare prune --obs-order).
const (
	OBSGreedy  = "greedy"
	OBSOneShot = "one-shot"
)

// OBSOrders are the values of --obs-order.
var OBSOrders = []string{OBSGreedy, OBSOneShot}

// GreedyBudget bounds the work of ordering one group greedily, in
// multiply-adds (greedyWork). Past it the group keeps the one-shot
// scores: a decoder's 5504-wide down projection would take 2e11.
const GreedyBudget = 2e10

// consumerState is one consumer layer of a group while the group is
// ordered: its weights and inverse Hessian are updated as channels go.
type consumerState struct {
	layer      *calib.Layer
	w          []float64
	rows, cols int
	hinv       *sharedInverse
	// colsOf lists, per group index, the weight columns it feeds.
	colsOf [][]int
}

// sharedInverse is one inverse Hessian copy, updated once per removal
// however many consumers read it (Q, K and V share their rows).
type sharedInverse struct {
	h   []float64 // the copy the order updates (copyConsumers)
	src []float64 // the OBS inverse it copies
	n   int
}

// greedyScore orders grp's channels the way Optimal Brain Surgeon
// removes weights one at a time (OBC, ZipLM): the cheapest channel
// under the current weights and inverse Hessian goes first, the other
// consumers' weights take its optimal update, and the rest are costed
// again. One-shot scores cost every channel as if it alone went, so two
// channels that stand in for each other both look cheap and both go;
// greedily, the second costs what losing both does. A channel's score
// is its marginal cost when it went (non-decreasing along the order),
// on the same scale as the one-shot costs, so the global ranking and
// the allocation compare groups as before. ok is false when the group
// is too large to order (GreedyBudget; recorded for GreedyNote) or has
// no consumer with statistics.
func (o *OBS) greedyScore(ctx context.Context, g *graph.Graph, grp *prune.Group) (scores []float64, ok bool, err error) {
	states := o.greedyConsumers(grp)
	if states == nil {
		return nil, false, nil
	}
	if greedyWork(states, grp.Size) > o.greedyBudget() {
		o.oneShot = append(o.oneShot, fmt.Sprintf("%d (%s)", grp.ID, grp.Name))
		return nil, false, nil
	}
	held, err := copyConsumers(g, states)
	if err != nil {
		return nil, false, err
	}
	order, marginal, err := greedyOrder(ctx, states, grp.Size)
	// The copies and the order's buffers are garbage now; past a few
	// tens of MB, collect before the next group adds its own on top
	// (with GOGC the heap would grow to twice the live inverses).
	calib.CollectAfterBytes(held)
	if err != nil {
		return nil, false, err
	}
	scores = make([]float64, grp.Size)
	running := 0.0
	for k, i := range order {
		// Non-decreasing along the order, and strictly: a plateau
		// would tie channels the selection then can only take or
		// leave together.
		running = math.Max(marginal[k], math.Nextafter(running, math.Inf(1)))
		scores[i] = running
	}
	return scores, true, nil
}

// GreedyNote says which groups the greedy order left to one-shot
// scores for GreedyBudget, the first few by name; "" when none did.
func (o *OBS) GreedyNote() string {
	n := len(o.oneShot)
	if n == 0 {
		return ""
	}
	const named = 3
	list := strings.Join(o.oneShot[:min(n, named)], ", ")
	if n > named {
		list += fmt.Sprintf(" and %d more", n-named)
	}
	return fmt.Sprintf("%d groups scored one-shot, too large to order greedily within %.0e multiply-adds each: group %s", n, o.greedyBudget(), list)
}

// greedyBudget is GreedyBudget, or the budget a test set.
func (o *OBS) greedyBudget() float64 {
	if o.budget > 0 {
		return o.budget
	}
	return GreedyBudget
}

// greedyConsumers gathers the group's consumer layers that have
// statistics and the weight columns each index feeds; nil when none
// has statistics. Nothing is copied yet (copyConsumers): a group past
// the budget never holds copies of a decoder's 5504-column inverse.
func (o *OBS) greedyConsumers(grp *prune.Group) []*consumerState {
	var states []*consumerState
	shared := map[*float64]*sharedInverse{}
	byNode := map[string]*consumerState{}
	for _, mem := range grp.Members {
		for _, l := range o.consumers(mem) {
			// A layer listed twice (two members on its input) is one
			// consumer: its columns add up.
			st := byNode[l.Key()]
			if st == nil {
				src := o.hinv[l.Key()]
				inv := shared[&src[0]]
				if inv == nil {
					inv = &sharedInverse{src: src, n: l.In()}
					shared[&src[0]] = inv
				}
				st = &consumerState{layer: l, rows: l.Out(), cols: l.In(), hinv: inv, colsOf: make([][]int, grp.Size)}
				byNode[l.Key()] = st
				states = append(states, st)
			}
			for i, ps := range positionsByIndex(mem, grp.Size) {
				st.colsOf[i] = append(st.colsOf[i], l.Columns(ps)...)
			}
		}
	}
	return states
}

// copyConsumers gives every state a copy of its layer's weights and
// of its inverse Hessian (one copy per inverse however many layers
// share it), which the order then updates, and returns the bytes held.
func copyConsumers(g *graph.Graph, states []*consumerState) (int64, error) {
	var bytes int64
	for _, st := range states {
		w, err := st.layer.Matrix(g)
		if err != nil {
			return bytes, err
		}
		st.w = w
		bytes += 8 * int64(len(w))
		if st.hinv.h == nil {
			st.hinv.h = append([]float64(nil), st.hinv.src...)
			bytes += 8 * int64(len(st.hinv.h))
		}
	}
	return bytes, nil
}

// greedyWork is the multiply-adds of ordering size channels over
// states: each removal updates its consumers' weights (rows × columns
// per column removed) and inverses (columns² per column removed), and
// every step costs the channels left (rows × k² + k³ for k columns).
func greedyWork(states []*consumerState, size int) float64 {
	work := 0.0
	seen := map[*sharedInverse]bool{}
	for _, st := range states {
		fed, sq, cube := 0.0, 0.0, 0.0
		for _, q := range st.colsOf {
			k := float64(len(q))
			fed += k
			sq += k * k
			cube += k * k * k
		}
		work += float64(st.rows) * float64(st.cols) * fed
		if !seen[st.hinv] {
			seen[st.hinv] = true
			work += float64(st.hinv.n) * float64(st.hinv.n) * fed
		}
		work += float64(size) / 2 * (float64(st.rows)*sq + cube)
	}
	return work
}

// greedyOrder removes the channels one at a time, the cheapest under
// the current weights and inverses first, and returns the order and
// each removal's cost. The costs add up to the cost of removing every
// channel so far at once (OBS updates compose), so a prefix's summed
// marginals are its exact OBS error.
func greedyOrder(ctx context.Context, states []*consumerState, size int) (order []int, marginal []float64, err error) {
	alive := make([]int, size)
	for i := range alive {
		alive[i] = i
	}
	cost := make([]float64, size)
	for len(alive) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for _, i := range alive {
			cost[i] = 0
			for _, st := range states {
				c, err := st.cost(st.colsOf[i])
				if err != nil {
					return nil, nil, err
				}
				cost[i] += c
			}
		}
		best := 0
		for k, i := range alive {
			if cost[i] < cost[alive[best]] {
				best = k
			}
		}
		i := alive[best]
		order, marginal = append(order, i), append(marginal, cost[i])
		alive = append(alive[:best], alive[best+1:]...)
		if len(alive) == 0 {
			break
		}
		if err := removeFrom(states, i); err != nil {
			return nil, nil, err
		}
	}
	return order, marginal, nil
}

// cost is ½ Σ_rows w_Q (H⁻¹_QQ)⁻¹ w_Qᵀ under the current weights and
// inverse.
func (st *consumerState) cost(q []int) (float64, error) {
	if len(q) == 0 {
		return 0, nil
	}
	n := st.hinv.n
	if len(q) == 1 {
		j := q[0]
		d := st.hinv.h[j*n+j]
		if d <= 0 {
			return math.Inf(1), nil
		}
		s := 0.0
		for r := range st.rows {
			v := st.w[r*st.cols+j]
			s += v * v
		}
		return s / d / 2, nil
	}
	return prune.OBSCost(st.w, st.rows, st.cols, st.hinv.h, q)
}

// removeFrom applies the optimal update for group index i to every
// consumer's weights, then removes its columns from each inverse once
// (the weights' updates read the inverse from before).
func removeFrom(states []*consumerState, i int) error {
	gone := map[*sharedInverse][]int{}
	var order []*sharedInverse
	for _, st := range states {
		q := st.colsOf[i]
		if len(q) == 0 {
			continue
		}
		if err := prune.OBSRemove(st.w, st.rows, st.cols, st.hinv.h, q); err != nil {
			return err
		}
		if _, seen := gone[st.hinv]; !seen {
			order = append(order, st.hinv)
		}
		gone[st.hinv] = union(gone[st.hinv], q)
	}
	for _, inv := range order {
		if err := downdate(inv.h, inv.n, gone[inv]); err != nil {
			return err
		}
	}
	return nil
}

// union appends to a the values of b it lacks.
func union(a, b []int) []int {
	have := map[int]bool{}
	for _, v := range a {
		have[v] = true
	}
	for _, v := range b {
		if !have[v] {
			a = append(a, v)
			have[v] = true
		}
	}
	return a
}

// downdate removes columns q from the n×n inverse h in place.
func downdate(h []float64, n int, q []int) error {
	k := len(q)
	sInv, err := prune.SubInverse(h, n, q)
	if err != nil {
		return fmt.Errorf("importance: obs: %w", err)
	}
	// a = H⁻¹_{Q,:} (k×n); t = (H⁻¹_QQ)⁻¹ a; H⁻¹ −= aᵀ t.
	a := make([]float64, k*n)
	for r, i := range q {
		copy(a[r*n:(r+1)*n], h[i*n:(i+1)*n])
	}
	t := make([]float64, k*n)
	sr := sInv.RawMatrix()
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: k, Cols: k, Stride: sr.Stride, Data: sr.Data},
		blas64.General{Rows: k, Cols: n, Stride: n, Data: a}, 0,
		blas64.General{Rows: k, Cols: n, Stride: n, Data: t})
	blas64.Gemm(blas.Trans, blas.NoTrans, -1,
		blas64.General{Rows: k, Cols: n, Stride: n, Data: a},
		blas64.General{Rows: k, Cols: n, Stride: n, Data: t}, 1,
		blas64.General{Rows: n, Cols: n, Stride: n, Data: h})
	for _, i := range q {
		for j := range n {
			h[i*n+j], h[j*n+i] = 0, 0
		}
	}
	return nil
}
