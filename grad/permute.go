package grad

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Permute reorders x's axes: output axis a is input axis perm[a] (ONNX
// Transpose). gorgonia's Transpose walks its output through a generic
// iterator, one call per element; permuteOp copies along the output's
// last axis with the input's stride, and its gradient is the inverse
// permutation.
func Permute(x *G.Node, perm []int) (*G.Node, error) {
	if len(perm) != x.Dims() {
		return nil, fmt.Errorf("%w: permutation %v of rank %d", ErrUnsupported, perm, x.Dims())
	}
	seen := make([]bool, len(perm))
	for _, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("%w: %v is not a permutation", ErrUnsupported, perm)
		}
		seen[p] = true
	}
	return G.ApplyOp(permuteOp{perm}, x)
}

type permuteOp struct{ perm []int }

func (permuteOp) Arity() int    { return 1 }
func (permuteOp) Type() hm.Type { return sameType(1) }

func (o permuteOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	out := make(tensor.Shape, len(o.perm))
	for a, p := range o.perm {
		out[a] = s[p]
	}
	return out, nil
}

func (o permuteOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	out, _ := o.InferShape(s)
	st := strides(s)
	from := make([]int, len(o.perm)) // input stride of each output axis
	for a, p := range o.perm {
		from[a] = st[p]
	}
	y := make([]float64, len(x))
	if len(out) == 0 {
		copy(y, x)
		return newDense(out, y), nil
	}
	at := 0
	var walk func(a, xo int)
	walk = func(a, xo int) {
		if a == len(out)-1 {
			n, step := out[a], from[a]
			row := y[at : at+n]
			if step == 1 {
				copy(row, x[xo:xo+n])
			} else {
				for i := range row {
					row[i] = x[xo+i*step]
				}
			}
			at += n
			return
		}
		for i := range out[a] {
			walk(a+1, xo+i*from[a])
		}
	}
	walk(0, 0)
	return newDense(out, y), nil
}

func (permuteOp) ReturnsPtr() bool        { return false }
func (permuteOp) CallsExtern() bool       { return false }
func (permuteOp) OverwritesInput() int    { return -1 }
func (o permuteOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o permuteOp) Hashcode() uint32      { return hashString(o.String()) }
func (o permuteOp) String() string        { return fmt.Sprintf("Permute(%v)", o.perm) }
func (permuteOp) DiffWRT(int) []bool      { return []bool{true} }

func (o permuteOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	inv := make([]int, len(o.perm))
	for a, p := range o.perm {
		inv[p] = a
	}
	g, err := G.ApplyOp(permuteOp{inv}, grad)
	return G.Nodes{g}, err
}
