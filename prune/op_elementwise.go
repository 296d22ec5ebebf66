package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// Element-wise ops with numpy broadcasting (Add, Sub, Mul, Div, Pow, Max,
// Min, Sum, Mean, Where, PRelu, comparisons). Operands are aligned from
// the right. On each output axis, every labeled operand is coupled
// position by position (a residual Add, a squeeze-excitation Mul of a
// [N,C,1,1] gate with [N,C,H,W]); a constant operand of the full size is
// a member sliced on its matching axis (biases [C,1,1], layer scales);
// operands of size 1 on that axis (scalars, [N,1,H,W]) are untouched. A
// full-size operand that is neither labeled nor constant freezes the
// channel, except a rotary cos/sin table (op_rotary.go).

func init() {
	register(ruleFunc(analyzeElementwise),
		"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "PRelu",
		"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mod", "BitShift")
}

func analyzeElementwise(a *Analysis, n *graph.Node) error {
	y := n.Output(0)
	var ins []string
	for _, in := range n.Proto.Input {
		if in != "" {
			ins = append(ins, in)
		}
	}
	labeled := false
	r := 0
	known := true
	for _, in := range ins {
		s := a.shape(in)
		if a.lab(in) != nil {
			labeled = true
		}
		if s == nil {
			known = false
			continue
		}
		r = max(r, len(s))
	}
	if !known {
		a.freezeInputs(n, n.Name()+": operand of unknown rank")
		return nil
	}
	out := make([]int64, r)
	for j := range out {
		out[j] = 1
		for _, in := range ins {
			s := a.shape(in)
			d := dimOf(s, j-(r-len(s)))
			switch {
			case j-(r-len(s)) < 0 || d == 1:
			case d < 0:
				if out[j] == 1 {
					out[j] = -1
				}
			default:
				out[j] = d
			}
		}
	}
	a.setShape(y, out)
	if !labeled {
		return nil
	}
	for j := 0; j < r; j++ {
		var l []int32
		for _, in := range ins {
			s := a.shape(in)
			if x := a.lab(in)[j-(r-len(s))]; x != nil {
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
		ok := true
		for _, in := range ins {
			s := a.shape(in)
			ax := j - (r - len(s))
			if ax < 0 || a.lab(in)[ax] != nil || s[ax] == 1 {
				continue
			}
			if s[ax] == int64(len(l)) && a.isFloatConst(in) {
				ok = a.addParam(in, ax, l, KindConst, n) && ok
				continue
			}
			if s[ax] == int64(len(l)) && a.constSource(in, ax, l, n) {
				continue
			}
			if a.rotaryTable(in, ax, l, n) {
				continue
			}
			a.freeze(l, fmt.Sprintf("%s: operand %q is full size and fixed", n.Name(), in))
			ok = false
		}
		if ok {
			a.setLab(y, j, l)
		}
	}
	return nil
}

// isFloatConst reports whether name is a sliceable numeric constant.
func (a *Analysis) isFloatConst(name string) bool {
	if p := a.g.Producer(name); p != nil && p.Op() == "Identity" && p.Domain() == "" {
		return a.isFloatConst(p.Input(0))
	}
	t, ok := a.constant(name)
	return ok && graph.Bits(graph.DataTypeOf(t)) >= 8
}
