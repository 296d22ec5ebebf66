package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() {
	register(slice, "Slice")
	register(topK, "TopK")
}

// slice moves starts, ends and axes to inputs at 10 (Slice-1 clamped out
// of range bounds the same way; steps default to 1).
func slice(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(10) {
		return false, nil
	}
	starts, ends, axes := removeAttr(n, "starts"), removeAttr(n, "ends"), removeAttr(n, "axes")
	if starts == nil || ends == nil {
		return false, fmt.Errorf("%w: Slice without starts/ends", ErrUnsupported)
	}
	setInput(n, 1, c.int64s(n.Name()+"_starts", starts.Ints))
	setInput(n, 2, c.int64s(n.Name()+"_ends", ends.Ints))
	if axes != nil {
		setInput(n, 3, c.int64s(n.Name()+"_axes", axes.Ints))
	}
	return true, nil
}

// topK moves k to input 1 (a 1-element int64 tensor) at 10.
func topK(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(10) {
		return false, nil
	}
	k := removeAttr(n, "k")
	if k == nil {
		return false, fmt.Errorf("%w: TopK without k", ErrUnsupported)
	}
	setInput(n, 1, c.int64s(n.Name()+"_k", []int64{k.GetI()}))
	return true, nil
}
