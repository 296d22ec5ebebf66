package prune

import "github.com/pare-dev/pare/graph"

// Constant operands reached through broadcasting. A class token
// Expand(token[1,1,E], [B,1,1]) concatenated with the patch tokens, or a
// position embedding behind an Identity, is a parameter of the embedding
// width even though the operand itself is computed. constSource follows
// such a value back through Expand (whose shape entry on the axis is 1,
// so the expanded size follows the constant's), Identity and Cast to a
// float constant and records that constant's matching axis as a member.

// Every value on the way must be read by the next step only (so nothing
// else sees the size change); the values between get the labels, so that
// their stale value_info is dropped.
func (a *Analysis) constSource(v string, ax int, l []int32, n *graph.Node) bool {
	vs := a.shape(v)
	type step struct {
		v  string
		ax int
	}
	var path []step
	for range 8 {
		if vs == nil || ax < 0 || ax >= len(vs) || len(a.g.Consumers(v)) != 1 {
			return false
		}
		if a.isFloatConst(v) {
			if vs[ax] != int64(len(l)) || !a.addParam(v, ax, l, KindConst, n) {
				return false
			}
			for _, s := range path {
				a.setLab(s.v, s.ax, l)
			}
			return true
		}
		path = append(path, step{v, ax})
		p := a.g.Producer(v)
		if p == nil || p.Domain() != "" {
			return false
		}
		switch p.Op() {
		case "Expand":
			in := a.shape(p.Input(0))
			if in == nil {
				return false
			}
			if e, ok := a.intEntry(p.Input(1), ax-(len(vs)-a.lenInts(p.Input(1)))); !ok || e != 1 {
				return false
			}
			ax -= len(vs) - len(in)
			v, vs = p.Input(0), in
		case "Identity", "Cast":
			v = p.Input(0)
		default:
			return false
		}
	}
	return false
}

// intEntry returns entry k of a constant or folded integer vector; an
// entry before the vector's start (numpy alignment) counts as 1.
func (a *Analysis) intEntry(name string, k int) (int64, bool) {
	if k < 0 {
		return 1, true
	}
	if t, ok := a.g.Constant(name); ok {
		v, err := graph.Int64s(t)
		if err != nil || k >= len(v) {
			return 0, false
		}
		return v[k], true
	}
	if a.inferred == nil {
		return 0, false
	}
	d, ok := a.inferred.IntValue(name)
	if !ok || k >= len(d) || !d[k].IsKnown() {
		return 0, false
	}
	v, _ := d[k].Value()
	return v, true
}

// lenInts is the length of an integer vector, or 0 when unknown.
func (a *Analysis) lenInts(name string) int {
	if t, ok := a.g.Constant(name); ok {
		v, _ := graph.Int64s(t)
		return len(v)
	}
	if a.inferred != nil {
		if d, ok := a.inferred.IntValue(name); ok {
			return len(d)
		}
	}
	return 0
}
