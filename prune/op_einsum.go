package prune

import (
	"strings"

	"github.com/pare-dev/pare/graph"
)

// Einsum between activations, the form attention takes in some exports
// ("bhid,bhjd->bhij", "bhij,bhjd->bhid"). Per subscript letter:
//
//   - in two or more inputs and the output (batch, the head axis):
//     labeled occurrences are coupled and pass to the output;
//   - in two or more inputs, not the output (contracted, head_dim):
//     labeled occurrences are coupled;
//   - in one input and the output: passes through;
//   - in one input only (a reduction), repeated in one term (a diagonal),
//     or a labeled occurrence facing an unlabeled one of size > 1:
//     freezes.
//
// Equations without "->", with "...", or with a constant operand (a
// weight) freeze their channels.

func init() { register(ruleFunc(analyzeEinsum), "Einsum") }

func analyzeEinsum(a *Analysis, n *graph.Node) error {
	eq := strings.ReplaceAll(n.StringAttr("equation", ""), " ", "")
	lhs, rhs, ok := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	freeze := func(why string) error {
		a.freezeInputs(n, n.Name()+": Einsum "+why)
		return nil
	}
	if !ok || strings.Contains(eq, ".") || len(terms) != len(n.Proto.Input) {
		return freeze("equation form not handled (" + eq + ")")
	}
	type occ struct {
		in, ax int
	}
	where := map[rune][]occ{}
	var order []rune
	for i, term := range terms {
		s := a.shape(n.Input(i))
		if len(s) != len([]rune(term)) {
			return freeze("operand rank does not match " + term)
		}
		if a.isParam(n.Input(i)) && a.lab(n.Input(i)) == nil {
			for _, other := range n.Proto.Input {
				if a.lab(other) != nil {
					return freeze("with a constant operand")
				}
			}
		}
		seen := map[rune]bool{}
		for ax, c := range []rune(term) {
			if seen[c] {
				return freeze("diagonal " + term)
			}
			seen[c] = true
			if where[c] == nil {
				order = append(order, c)
			}
			where[c] = append(where[c], occ{i, ax})
		}
	}
	out := []rune(rhs)
	outAx := map[rune]int{}
	ys := make([]int64, len(out))
	for j, c := range out {
		if _, dup := outAx[c]; dup || where[c] == nil {
			return freeze("output subscripts " + rhs)
		}
		outAx[c] = j
		ys[j] = 1
		for _, o := range where[c] {
			if d := a.shape(n.Input(o.in))[o.ax]; d != 1 {
				ys[j] = d
			}
		}
	}
	a.setShape(n.Output(0), ys)
	for _, c := range order {
		var l []int32
		for _, o := range where[c] {
			if x := a.lab(n.Input(o.in))[o.ax]; x != nil {
				if l == nil {
					l = x
				} else {
					a.union(l, x, n.Name())
				}
			}
		}
		if l == nil {
			continue
		}
		for _, o := range where[c] {
			if a.lab(n.Input(o.in))[o.ax] == nil && a.shape(n.Input(o.in))[o.ax] != 1 {
				a.freeze(l, n.Name()+": Einsum axis faces a fixed operand")
			}
		}
		j, inOut := outAx[c]
		switch {
		case !inOut && len(where[c]) < 2:
			a.freeze(l, n.Name()+": Einsum reduces the channel axis")
		case inOut && len(where[c]) >= 2:
			a.mark(l, "head")
			a.setLab(n.Output(0), j, l)
		case inOut:
			a.mark(l, "head-dim")
			a.setLab(n.Output(0), j, l)
		default:
			a.mark(l, "head-dim")
		}
	}
	return nil
}
