package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() {
	register(axesToInput(13), "Squeeze", "Unsqueeze", "ReduceSum")
	register(axesToInput(18), "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
		"ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")
	register(split, "Split")
}

// axesToInput moves the axes attribute to input 1 at opset v (Squeeze,
// Unsqueeze and ReduceSum at 13, the other reductions at 18). Without the
// attribute the op already means "every axis" (reductions) or "every
// size-1 axis" (Squeeze), which an absent input keeps; Unsqueeze always
// had it.
func axesToInput(v int64) rule {
	return func(c *conv, n *graph.Node) (bool, error) {
		if !c.crosses(v) {
			return false, nil
		}
		a := removeAttr(n, "axes")
		if a == nil {
			if n.Op() == "Unsqueeze" {
				return false, fmt.Errorf("%w: Unsqueeze without axes", ErrUnsupported)
			}
			return false, nil
		}
		setInput(n, 1, c.int64s(n.Name()+"_axes", a.Ints))
		return true, nil
	}
}

// split moves the split sizes to input 1 at 13; from 18 a Split without
// sizes must say how many equal parts it makes (num_outputs).
func split(c *conv, n *graph.Node) (bool, error) {
	changed := false
	if c.crosses(13) {
		if a := removeAttr(n, "split"); a != nil {
			setInput(n, 1, c.int64s(n.Name()+"_split", a.Ints))
			changed = true
		}
	}
	if c.crosses(18) && n.Input(1) == "" && n.Attr("num_outputs") == nil {
		n.Proto.Attribute = append(n.Proto.Attribute, attrInt("num_outputs", int64(len(n.Proto.Output))))
		changed = true
	}
	return changed, nil
}
