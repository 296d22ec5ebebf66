package grad

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Einsum"] = einsum }

// einsum translates the equations that are a batched matrix product:
// both operands and the output share their leading letters (the batch
// axes, in one order), each operand's last two letters are one kept
// letter and the contracted one, in either order, and the output ends
// with the two kept letters, in either order. That is attention written
// as Einsum ("bhid,bhjd->bhij", "bhij,bhjd->bhid": MaxViT's). Operands
// are transposed into [..., i, k] and [..., k, j], multiplied, and the
// product transposed when the output asks for [..., j, i]. Any other
// equation is refused naming it.
func einsum(t *translator, n *graph.Node) error {
	eq := strings.ReplaceAll(n.StringAttr("equation", ""), " ", "")
	a, b, out, ok := matmulEquation(eq)
	if !ok {
		return fmt.Errorf("%w: Einsum %q (only batched matrix products)", ErrUnsupported, eq)
	}
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	y, err := t.in(n, 1)
	if err != nil {
		return err
	}
	if a.swap {
		if x, err = swapLast(x); err != nil {
			return err
		}
	}
	if b.swap {
		if y, err = swapLast(y); err != nil {
			return err
		}
	}
	p, err := matMul(x, y)
	if err != nil {
		return err
	}
	if out.swap {
		if p, err = swapLast(p); err != nil {
			return err
		}
	}
	return t.setInferred(n, 0, p)
}

// einsumSide says whether a side's last two letters need swapping into
// the product's order.
type einsumSide struct{ swap bool }

// matmulEquation parses eq as a batched matrix product, "BIK,BKJ->BIJ"
// with B any run of batch letters and each pair of trailing letters in
// either order.
func matmulEquation(eq string) (a, b, out einsumSide, ok bool) {
	lhs, o, found := strings.Cut(eq, "->")
	ops := strings.Split(lhs, ",")
	if !found || len(ops) != 2 || strings.Contains(eq, ".") {
		return a, b, out, false
	}
	l, r := ops[0], ops[1]
	n := len(l)
	if n < 2 || len(r) != n || len(o) != n || !distinct(l) || !distinct(r) || !distinct(o) {
		return a, b, out, false
	}
	batch := l[:n-2]
	if r[:n-2] != batch || o[:n-2] != batch {
		return a, b, out, false
	}
	l2, r2, o2 := l[n-2:], r[n-2:], o[n-2:]
	// The contracted letter is in both operands' pairs and not the output's.
	var k byte
	for i := range 2 {
		if strings.IndexByte(r2, l2[i]) >= 0 && strings.IndexByte(o2, l2[i]) < 0 {
			k = l2[i]
		}
	}
	if k == 0 || strings.ContainsRune(batch, rune(k)) {
		return a, b, out, false
	}
	i := other(l2, k)
	j := other(r2, k)
	if i == j || strings.IndexByte(batch, i) >= 0 || strings.IndexByte(batch, j) >= 0 {
		return a, b, out, false
	}
	switch o2 {
	case string([]byte{i, j}):
	case string([]byte{j, i}):
		out.swap = true
	default:
		return a, b, out, false
	}
	a.swap = l2[0] == k // [..., k, i]
	b.swap = r2[1] == k // [..., j, k]
	return a, b, out, true
}

// other is the letter of the pair p that is not k.
func other(p string, k byte) byte {
	if p[0] == k {
		return p[1]
	}
	return p[0]
}

// distinct reports whether no letter repeats in s (a repeated letter is
// a diagonal, not a product).
func distinct(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(s[i+1:], s[i]) >= 0 {
			return false
		}
	}
	return true
}

// swapLast transposes the last two axes of x.
func swapLast(x *G.Node) (*G.Node, error) {
	r := x.Dims()
	perm := make([]int, r)
	for i := range perm {
		perm[i] = i
	}
	perm[r-2], perm[r-1] = r-1, r-2
	return Permute(x, perm)
}
