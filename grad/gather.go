package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Gather"] = gather }

// gather picks one static index along an axis of a float tensor (the
// class token of a ViT; the axis is dropped, as ONNX does for a scalar
// index), or looks up the rows of an embedding table for the token ids
// of the input.
func gather(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	if ids, ok := t.vals[n.Input(1)]; ok && ids == t.net.Input {
		return embedding(t, n, x, ids)
	}
	idx, err := t.ints(n.Input(1))
	if err != nil {
		return err
	}
	ts, ok := t.shapes.Of(n.Input(1))
	if len(idx) != 1 || !ok || ts.Rank() != 0 {
		return fmt.Errorf("%w: Gather of float data with a non-scalar index", ErrUnsupported)
	}
	axis := int(n.IntAttr("axis", 0))
	if axis < 0 {
		axis += x.Dims()
	}
	i := int(idx[0])
	if i < 0 {
		i += x.Shape()[axis]
	}
	sl := make([]tensor.Slice, x.Dims()) // nil: the whole axis
	sl[axis] = G.S(i)
	y, err := G.Slice(x, sl...)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// embedding is Gather(table, ids) along axis 0 of a 2-D table: the ids
// are flattened to a column, looked up by Embed, and the rows reshaped
// to the output's inferred shape.
func embedding(t *translator, n *graph.Node, table, ids *G.Node) error {
	if n.IntAttr("axis", 0) != 0 || table.Dims() != 2 {
		return fmt.Errorf("%w: Gather by token ids of a table of shape %v along axis %d (rows of a 2-D table only)",
			ErrUnsupported, table.Shape(), n.IntAttr("axis", 0))
	}
	col, err := G.Reshape(ids, []int{ids.Shape().TotalSize(), 1})
	if err != nil {
		return err
	}
	y, err := Embed(table, col)
	if err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}
