package upgrade

import (
	"github.com/pare-dev/pare/graph"
)

func init() { register(softmax, "Softmax", "LogSoftmax", "Hardmax") }

// softmax: before 13 these ops flattened the input to 2-D at axis
// (default 1) and normalised over everything after it; from 13 they
// normalise along the one axis (default -1). When axis is the last axis
// the two agree and only the attribute is made explicit; otherwise the
// node becomes Flatten(axis) → op(axis=1) → Reshape(Shape(x)).
func softmax(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(13) {
		return false, nil
	}
	axis := n.IntAttr("axis", 1)
	x := n.Input(0)
	if s, ok := c.inferred(x); ok && s.Rank() > 0 {
		r := int64(s.Rank())
		if axis < 0 {
			axis += r
		}
		if axis == r-1 {
			removeAttr(n, "axis")
			n.Proto.Attribute = append(n.Proto.Attribute, attrInt("axis", axis))
			return true, nil
		}
	}
	base := n.Name()
	flat, shape, y := c.name(base+"_flat"), c.name(base+"_shape"), c.name(base+"_2d")
	out := n.Output(0)
	c.before[n.Proto] = append(c.before[n.Proto],
		c.node("Flatten", base+"_Flatten", []string{x}, []string{flat}, attrInt("axis", axis)),
		c.node("Shape", base+"_Shape", []string{x}, []string{shape}))
	n.Proto.Input[0] = flat
	n.Proto.Output[0] = y
	removeAttr(n, "axis")
	n.Proto.Attribute = append(n.Proto.Attribute, attrInt("axis", 1))
	c.after[n.Proto] = append(c.after[n.Proto], c.node("Reshape", base+"_Reshape", []string{y, shape}, []string{out}))
	return true, nil
}
