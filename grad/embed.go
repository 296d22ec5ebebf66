package grad

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embed looks up rows of table [V, H] for the token ids of the column
// ids [N, 1] (integer values held as float64, as the net holds its
// token input) and returns them as [N, H]. Its gradient with respect to
// the table adds each output row's gradient into the row of its id (a
// token seen twice collects both); the ids get none.
func Embed(table, ids *G.Node) (*G.Node, error) {
	ts, is := table.Shape(), ids.Shape()
	if len(ts) != 2 || len(is) != 2 || is[1] != 1 {
		return nil, fmt.Errorf("%w: Embed of table %v by ids %v (want [V, H] and [N, 1])", ErrUnsupported, ts, is)
	}
	return G.ApplyOp(embedOp{rows: ts[0]}, table, ids)
}

// tokenRows returns the table row of each id, checking the range.
func tokenRows(ids []float64, rows int) ([]int, error) {
	out := make([]int, len(ids))
	for i, v := range ids {
		r := int(v)
		if float64(r) != v || r < 0 || r >= rows || math.IsNaN(v) {
			return nil, fmt.Errorf("token id %v at position %d is outside the embedding table of %d rows", v, i, rows)
		}
		out[i] = r
	}
	return out, nil
}

// embedOp is the lookup: inputs table [V, H] and ids [N, 1].
type embedOp struct{ rows int }

func (embedOp) Arity() int    { return 2 }
func (embedOp) Type() hm.Type { return sameType(2) }

func (o embedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	t, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	i, err := shapeOf(in[1])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{i[0], t[1]}, nil
}

func (o embedOp) Do(in ...G.Value) (G.Value, error) {
	table, ts, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	ids, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	rows, err := tokenRows(ids, ts[0])
	if err != nil {
		return nil, err
	}
	h := ts[1]
	y := make([]float64, len(rows)*h)
	for i, r := range rows {
		copy(y[i*h:(i+1)*h], table[r*h:(r+1)*h])
	}
	return newDense(tensor.Shape{len(rows), h}, y), nil
}

func (embedOp) ReturnsPtr() bool        { return false }
func (embedOp) CallsExtern() bool       { return false }
func (embedOp) OverwritesInput() int    { return -1 }
func (o embedOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o embedOp) Hashcode() uint32      { return hashString(o.String()) }
func (o embedOp) String() string        { return fmt.Sprintf("Embed(%d rows)", o.rows) }
func (embedOp) DiffWRT(int) []bool      { return []bool{true, false} }

func (o embedOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(embedGradOp(o), in[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g, nil}, nil
}

// embedGradOp scatters the output gradient [N, H] into a table-shaped
// gradient [V, H]: inputs ids [N, 1] and the gradient.
type embedGradOp struct{ rows int }

func (embedGradOp) Arity() int    { return 2 }
func (embedGradOp) Type() hm.Type { return sameType(2) }

func (o embedGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	g, err := shapeOf(in[1])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{o.rows, g[1]}, nil
}

func (o embedGradOp) Do(in ...G.Value) (G.Value, error) {
	ids, _, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	g, gs, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	rows, err := tokenRows(ids, o.rows)
	if err != nil {
		return nil, err
	}
	h := gs[1]
	out := make([]float64, o.rows*h)
	for i, r := range rows {
		dst, src := out[r*h:(r+1)*h], g[i*h:(i+1)*h]
		for j, v := range src {
			dst[j] += v
		}
	}
	return newDense(tensor.Shape{o.rows, h}, out), nil
}

func (embedGradOp) ReturnsPtr() bool        { return false }
func (embedGradOp) CallsExtern() bool       { return false }
func (embedGradOp) OverwritesInput() int    { return -1 }
func (o embedGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o embedGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o embedGradOp) String() string        { return fmt.Sprintf("EmbedGrad(%d rows)", o.rows) }
func (embedGradOp) DiffWRT(int) []bool      { return []bool{false, false} }

func (embedGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("EmbedGrad")
}
