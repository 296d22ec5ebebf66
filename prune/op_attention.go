package prune

import (
	"github.com/pare-dev/pare/graph"
)

// MatMul between two activations (attention: scores = Q·Kᵀ, context =
// attention·V). Operands broadcast on the batch axes (all but the last
// two), as numpy matmul does:
//
//   - batch axes: labeled operands are coupled position by position; an
//     operand of size 1 there broadcasts; a labeled axis facing a fixed
//     full-size one freezes. This is where the head axis of Q, K and V
//     meets, so head h of Q, of K and of V is one channel (and under
//     grouped-query attention, where K and V are repeated to the query
//     heads, a KV head is one channel with its query heads);
//   - the contracted axis (A's last, B's second to last) couples A and B:
//     Q's head_dim with K's. A labeled contracted axis facing a fixed one
//     freezes;
//   - A's rows and B's columns pass to the output: V's head_dim (or
//     features) reach the output projection.
//
// Labels on batch axes are marked "head", on the other axes "head-dim";
// kinds.go names groups by these marks. Nothing here is a parameter, so
// nothing is sliced and no MACs are counted.

func analyzeActMatMul(a *Analysis, n *graph.Node) error {
	x, w, y := n.Input(0), n.Input(1), n.Output(0)
	xs, ws := a.shape(x), a.shape(w)
	if len(xs) < 2 || len(ws) < 2 {
		a.freezeInputs(n, n.Name()+": MatMul between activations of rank < 2 or unknown rank")
		return nil
	}
	rx, rw := len(xs), len(ws)
	r := max(rx, rw)
	for j := 0; j < r-2; j++ {
		ix, iw := j-(r-rx), j-(r-rw)
		var lx, lw []int32
		dx, dw := int64(1), int64(1)
		if ix >= 0 {
			lx, dx = a.lab(x)[ix], xs[ix]
		}
		if iw >= 0 {
			lw, dw = a.lab(w)[iw], ws[iw]
		}
		var out []int32
		switch {
		case lx != nil && lw != nil && len(lw) == 1 && len(lx) > 1:
			// Multi-query attention: one key/value head broadcast to
			// every query head stays; the query heads prune.
			a.freeze(lw, n.Name()+": a single key/value head broadcast to every query head is kept")
			out = lx
		case lx != nil && lw != nil && len(lx) == 1 && len(lw) > 1:
			a.freeze(lx, n.Name()+": a single key/value head broadcast to every query head is kept")
			out = lw
		case lx != nil && lw != nil:
			a.union(lx, lw, n.Name())
			out = lx
		case lx != nil && dw == 1:
			out = lx
		case lw != nil && dx == 1:
			out = lw
		case lx != nil:
			a.freeze(lx, n.Name()+": batch axis faces a fixed operand")
		case lw != nil:
			a.freeze(lw, n.Name()+": batch axis faces a fixed operand")
		}
		a.mark(out, "head")
		a.setLab(y, j, out)
	}
	kx, kw := a.lab(x)[rx-1], a.lab(w)[rw-2]
	switch {
	case kx != nil && kw != nil:
		a.union(kx, kw, n.Name()+": contracted axis")
		a.mark(kx, "head-dim")
	case kx != nil:
		a.freeze(kx, n.Name()+": contracted with a fixed operand")
	case kw != nil:
		a.freeze(kw, n.Name()+": contracted with a fixed operand")
	}
	if l := a.lab(x)[rx-2]; l != nil {
		a.mark(l, "head-dim")
		a.setLab(y, r-2, l)
	}
	if l := a.lab(w)[rw-1]; l != nil {
		a.mark(l, "head-dim")
		a.setLab(y, r-1, l)
	}
	return nil
}

// mark records an attention role for labeled elements (first mark wins).
func (a *Analysis) mark(l []int32, role string) {
	if a.marks == nil {
		a.marks = map[int32]string{}
	}
	for _, e := range l {
		if _, ok := a.marks[e]; e >= 0 && !ok {
			a.marks[e] = role
		}
	}
}

// roleKVGroup marks key/value heads passed through grouped-query
// attention's repeat with Options.KVGroups (kinds.go: kv-groups).
const roleKVGroup = "kv-group"

// markRole sets an element's role, overriding an earlier mark.
func (a *Analysis) markRole(e int32, role string) {
	if a.marks == nil {
		a.marks = map[int32]string{}
	}
	a.marks[e] = role
}
