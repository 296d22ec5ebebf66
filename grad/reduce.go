package grad

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() {
	rules["ReduceMean"] = reduceMean
	rules["Split"] = split
	rules["Cast"] = cast
	rules["Slice"] = slice
}

// reduceMean averages over the axes (an attribute before opset 18, an
// input after; none means all unless noop_with_empty_axes): the reduced
// axes are moved last and flattened into one, averaged by gorgonia's
// Mean over the last axis of a matrix (its Mean over a middle axis gave
// wrong values, measured), and the result reshaped to the inferred
// output shape, which puts back the reduced axes when keepdims is set.
func reduceMean(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	var axes []int64
	if n.Attr("axes") != nil {
		axes = n.IntsAttr("axes", nil)
	} else if a := n.Input(1); a != "" {
		if axes, err = t.ints(a); err != nil {
			return err
		}
	}
	if len(axes) == 0 {
		if n.IntAttr("noop_with_empty_axes", 0) != 0 {
			t.set(n, 0, x)
			return nil
		}
		for a := range x.Dims() {
			axes = append(axes, int64(a))
		}
	}
	reduced := make([]bool, x.Dims())
	for _, a := range axes {
		if a < 0 {
			a += int64(x.Dims())
		}
		reduced[a] = true
	}
	var perm []int
	kept, count := 1, 1
	for a, r := range reduced {
		if !r {
			perm = append(perm, a)
			kept *= x.Shape()[a]
		}
	}
	for a, r := range reduced {
		if r {
			perm = append(perm, a)
			count *= x.Shape()[a]
		}
	}
	y := x
	if !slices.IsSorted(perm) {
		if y, err = Permute(y, perm); err != nil {
			return err
		}
	}
	if y, err = G.Reshape(y, []int{kept, count}); err != nil {
		return err
	}
	if y, err = G.Mean(y, 1); err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}

// split cuts x along an axis into the outputs' inferred sizes.
func split(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	axis := int(n.IntAttr("axis", 0))
	if axis < 0 {
		axis += x.Dims()
	}
	start := 0
	for i := range n.Proto.Output {
		s, ok := t.shapes.Of(n.Output(i))
		dims, known := s.Ints()
		if !ok || !known {
			return fmt.Errorf("%w: Split output %s shape not static", ErrUnsupported, n.Output(i))
		}
		size := int(dims[axis])
		y, err := TakeRange(x, axis, start, size)
		if err != nil {
			return err
		}
		if err := t.setInferred(n, i, y); err != nil {
			return err
		}
		start += size
	}
	return nil
}

// cast passes float values through a Cast to float (FLOAT or DOUBLE:
// the net computes in float64) and turns a static integer tensor (a
// size read from a shape, such as an attention scale's head width) into
// a float constant; a Cast to any other type that shape inference could
// not fold is refused.
func cast(t *translator, n *graph.Node) error {
	if ids, ok := t.vals[n.Input(0)]; ok && !t.isFloatValue(n.Input(0)) && !isFloat(graph.DataType(n.IntAttr("to", 0))) {
		// Token ids to another integer type: the net holds them as
		// float64 either way.
		t.set(n, 0, ids)
		return nil
	}
	if to := n.IntAttr("to", 0); to != 1 && to != 11 {
		return fmt.Errorf("%w: Cast to data type %d on a value that is not a static shape computation", ErrUnsupported, to)
	}
	if _, ok := t.vals[n.Input(0)]; !ok {
		if v, err := t.ints(n.Input(0)); err == nil {
			s, _ := t.shapes.Of(n.Input(0))
			dims, _ := s.Ints()
			f := make([]float64, len(v))
			for i, x := range v {
				f[i] = float64(x)
			}
			// A node of the graph (not a free constant), so that ops
			// over constants alone still have a graph.
			name := n.Output(0)
			if len(dims) == 0 {
				t.set(n, 0, G.NewScalar(t.g, G.Float64, G.WithName(name), G.WithValue(f[0])))
			} else {
				shape := ints(dims)
				t.set(n, 0, G.NewTensor(t.g, G.Float64, len(shape), G.WithShape(shape...), G.WithName(name),
					G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f)))))
			}
			return nil
		}
	}
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	t.set(n, 0, x)
	return nil
}

// slice cuts x to [start, end) on each sliced axis, with ONNX's
// clamping of out-of-range bounds; an axis with a step other than 1 is
// gathered at the indices it keeps.
func slice(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	var starts, ends, axes, steps []int64
	if n.Attr("starts") != nil { // opset < 10
		starts, ends, axes = n.IntsAttr("starts", nil), n.IntsAttr("ends", nil), n.IntsAttr("axes", nil)
	} else {
		if starts, err = t.ints(n.Input(1)); err != nil {
			return err
		}
		if ends, err = t.ints(n.Input(2)); err != nil {
			return err
		}
		if a := n.Input(3); a != "" {
			if axes, err = t.ints(a); err != nil {
				return err
			}
		}
		if s := n.Input(4); s != "" {
			if steps, err = t.ints(s); err != nil {
				return err
			}
		}
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	ranges := map[int][2]int{} // axis → the contiguous range a step of 1 keeps
	strided := map[int][]int{} // axis → the indices a step other than 1 keeps
	for i, a := range axes {
		if a < 0 {
			a += int64(x.Dims())
		}
		d := int64(x.Shape()[a])
		if steps != nil && steps[i] != 1 {
			idx := stridedIndices(starts[i], ends[i], steps[i], d)
			if len(idx) == 0 {
				return fmt.Errorf("%w: empty Slice", ErrUnsupported)
			}
			strided[int(a)] = idx
			continue
		}
		clamp := func(v int64) int64 {
			if v < 0 {
				v += d
			}
			return max(0, min(v, d))
		}
		b, e := clamp(starts[i]), clamp(ends[i])
		if e <= b {
			return fmt.Errorf("%w: empty Slice", ErrUnsupported)
		}
		if b > 0 || e < d {
			ranges[int(a)] = [2]int{int(b), int(e)}
		}
	}
	// Strided axes (a Swin's patch merging takes every other row) are
	// taken at their indices, ranges as contiguous runs, one axis at a
	// time.
	for a := range x.Dims() {
		if idx, ok := strided[a]; ok {
			if x, err = Take(x, a, idx, []int{len(idx)}); err != nil {
				return err
			}
		} else if r, ok := ranges[a]; ok {
			if x, err = TakeRange(x, a, r[0], r[1]-r[0]); err != nil {
				return err
			}
		}
	}
	return t.setInferred(n, 0, x)
}

// stridedIndices lists the indices of an axis of size d that a Slice
// from start to end by step (not 0) keeps, with ONNX's clamping.
func stridedIndices(start, end, step, d int64) []int {
	if step == 0 {
		return nil
	}
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	var idx []int
	if step > 0 {
		start, end = max(0, min(start, d)), max(0, min(end, d))
		for i := start; i < end; i += step {
			idx = append(idx, int(i))
		}
		return idx
	}
	start, end = max(0, min(start, d-1)), max(-1, min(end, d-1))
	for i := start; i > end; i += step {
		idx = append(idx, int(i))
	}
	return idx
}
