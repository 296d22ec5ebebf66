package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Gather"] = gather }

// gather picks one static index along an axis of a float tensor (the
// class token of a ViT); the axis is dropped, as ONNX does for a scalar
// index.
func gather(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
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
