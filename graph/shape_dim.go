package graph

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

type dimKind uint8

const (
	dimUnknown dimKind = iota
	dimInt
	dimSym
	dimAffine // n·sym + off, off ≠ 0 (a sequence length plus a constant)
)

// Dim is one tensor dimension: a known size, a symbolic size, or
// unknown (the zero Dim). A symbolic size is a positive multiple of a
// product of named symbols ("batch", "2*batch", "batch*seq"), so that
// Flatten and Reshape keep symbolic batch and sequence sizes exact.
//
// Sums of one symbolic term and a constant ("seq+1", from a position
// buffer concatenated to one more entry) are kept as affine dims, so that
// a Slice back to "seq" recovers the symbol. They are neither known nor
// symbolic: code that needs a size or a product treats them as unknown.
type Dim struct {
	kind dimKind
	n    int64  // the size (dimInt) or the coefficient (dimSym, dimAffine)
	sym  string // sorted symbol names joined by "*" (dimSym, dimAffine)
	off  int64  // the constant term (dimAffine)
}

// DimOf returns the known size n.
func DimOf(n int64) Dim { return Dim{kind: dimInt, n: n} }

// SymDim returns the symbolic size called name; an empty name gives an
// unknown Dim.
func SymDim(name string) Dim {
	if name == "" {
		return Dim{}
	}
	parts := strings.Split(name, "*")
	slices.Sort(parts)
	return Dim{kind: dimSym, n: 1, sym: strings.Join(parts, "*")}
}

// Value returns the size when it is known.
func (d Dim) Value() (int64, bool) { return d.n, d.kind == dimInt }

// IsKnown reports whether the size is a known integer.
func (d Dim) IsKnown() bool { return d.kind == dimInt }

// IsSymbolic reports whether the size is a (multiple of a) symbol.
func (d Dim) IsSymbolic() bool { return d.kind == dimSym }

// IsUnknown reports whether nothing is known about the size.
func (d Dim) IsUnknown() bool { return d.kind == dimUnknown }

// Symbol returns the symbol product of a symbolic Dim ("batch",
// "batch*seq"), without its coefficient; "" otherwise.
func (d Dim) Symbol() string { return d.sym }

// Eval returns the size with every symbol set to symValue; false when
// the Dim is unknown.
func (d Dim) Eval(symValue int64) (int64, bool) {
	switch d.kind {
	case dimInt:
		return d.n, true
	case dimSym, dimAffine:
		v := d.n
		for range strings.Split(d.sym, "*") {
			v *= symValue
		}
		return v + d.off, true
	}
	return 0, false
}

func (d Dim) String() string {
	switch d.kind {
	case dimInt:
		return strconv.FormatInt(d.n, 10)
	case dimSym:
		if d.n == 1 {
			return d.sym
		}
		return strconv.FormatInt(d.n, 10) + "*" + d.sym
	case dimAffine:
		t := Dim{kind: dimSym, n: d.n, sym: d.sym}.String()
		if d.off > 0 {
			return t + "+" + strconv.FormatInt(d.off, 10)
		}
		return t + strconv.FormatInt(d.off, 10)
	}
	return "?"
}

// affine is a Dim as coefficient, symbol product and constant; ok is
// false for an unknown Dim.
func (d Dim) affine() (n int64, sym string, off int64, ok bool) {
	switch d.kind {
	case dimInt:
		return 0, "", d.n, true
	case dimSym:
		return d.n, d.sym, 0, true
	case dimAffine:
		return d.n, d.sym, d.off, true
	}
	return 0, "", 0, false
}

// makeAffine is n·sym + off in its simplest kind: a known size when n is
// 0, a symbolic size when off is 0 and n positive; unknown when n is
// negative (sizes do not shrink with the symbol).
func makeAffine(n int64, sym string, off int64) Dim {
	switch {
	case n == 0 || sym == "":
		return DimOf(off)
	case n < 0:
		return Dim{}
	case off == 0:
		return Dim{kind: dimSym, n: n, sym: sym}
	}
	return Dim{kind: dimAffine, n: n, sym: sym, off: off}
}

// addDims is a + s·b (s = ±1) when both are affine in the same symbol
// product; unknown otherwise.
func addDims(a, b Dim, s int64) Dim {
	an, asym, aoff, ok1 := a.affine()
	bn, bsym, boff, ok2 := b.affine()
	if !ok1 || !ok2 || (asym != "" && bsym != "" && asym != bsym) {
		return Dim{}
	}
	if asym == "" {
		asym = bsym
	}
	return makeAffine(an+s*bn, asym, aoff+s*boff)
}

// diffConst returns a − b when it is a constant.
func diffConst(a, b Dim) (int64, bool) {
	an, asym, aoff, ok1 := a.affine()
	bn, bsym, boff, ok2 := b.affine()
	if !ok1 || !ok2 || an != bn || (an != 0 && asym != bsym) {
		return 0, false
	}
	return aoff - boff, true
}

// minDim is the smaller of two sizes when their difference is constant.
func minDim(a, b Dim) (Dim, bool) {
	if d, ok := diffConst(a, b); ok {
		if d <= 0 {
			return a, true
		}
		return b, true
	}
	return Dim{}, false
}

// mulDim multiplies two sizes; anything times 0 is 0.
func mulDim(a, b Dim) Dim {
	if a == DimOf(0) || b == DimOf(0) {
		return DimOf(0)
	}
	if a.kind == dimUnknown || b.kind == dimUnknown {
		return Dim{}
	}
	if a.n != 0 && (a.n > math.MaxInt64/max(b.n, 1) || a.n < 0 || b.n < 0) {
		return Dim{}
	}
	n := a.n * b.n
	switch {
	case a.kind == dimInt && b.kind == dimInt:
		return DimOf(n)
	case a.kind == dimInt:
		return Dim{kind: dimSym, n: n, sym: b.sym}
	case b.kind == dimInt:
		return Dim{kind: dimSym, n: n, sym: a.sym}
	}
	parts := append(strings.Split(a.sym, "*"), strings.Split(b.sym, "*")...)
	slices.Sort(parts)
	return Dim{kind: dimSym, n: n, sym: strings.Join(parts, "*")}
}

// divDim divides a by b when the quotient is exact.
func divDim(a, b Dim) (Dim, bool) {
	if a.kind == dimUnknown || b.kind == dimUnknown || b.n == 0 || a.n%b.n != 0 {
		return Dim{}, false
	}
	n := a.n / b.n
	if b.kind == dimInt {
		if a.kind == dimInt {
			return DimOf(n), true
		}
		return Dim{kind: dimSym, n: n, sym: a.sym}, true
	}
	if a.kind == dimInt {
		return Dim{}, false
	}
	rest := strings.Split(a.sym, "*")
	for _, s := range strings.Split(b.sym, "*") {
		i := slices.Index(rest, s)
		if i < 0 {
			return Dim{}, false
		}
		rest = slices.Delete(rest, i, i+1)
	}
	if len(rest) == 0 {
		return DimOf(n), true
	}
	return Dim{kind: dimSym, n: n, sym: strings.Join(rest, "*")}, true
}

// prodDims multiplies sizes.
func prodDims(ds []Dim) Dim {
	p := DimOf(1)
	for _, d := range ds {
		p = mulDim(p, d)
	}
	return p
}

// broadcastDim combines two aligned sizes under numpy broadcasting; ok is
// false when both are known, differ, and neither is 1.
func broadcastDim(a, b Dim) (Dim, bool) {
	switch {
	case a == b:
		return a, true
	case a == DimOf(1):
		return b, true
	case b == DimOf(1):
		return a, true
	case a.kind == dimInt && b.kind == dimInt:
		return Dim{}, false
	case a.kind == dimInt:
		return a, true
	case b.kind == dimInt:
		return b, true
	case b.kind == dimUnknown:
		// A named size stays named against an unknown one: exporters
		// broadcast token ids of [batch, seq] with values whose shape is
		// computed at run time, and equal sizes are what a valid model has.
		return a, true
	case a.kind == dimUnknown:
		return b, true
	}
	return Dim{}, true
}
