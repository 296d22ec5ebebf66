package upgrade

import (
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

func init() { register(clip, "Clip") }

// clip moves min and max to inputs 1 and 2 at 11 (Clip-6 defaulted to
// the float range, the same as absent inputs).
func clip(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(11) {
		return false, nil
	}
	lo, hi := removeAttr(n, "min"), removeAttr(n, "max")
	if lo == nil && hi == nil {
		return false, nil
	}
	dt := c.elemType(n.Input(0))
	for i, a := range []*onnx.AttributeProto{lo, hi} {
		if a == nil {
			continue
		}
		s, err := c.scalar(n.Name()+[]string{"_min", "_max"}[i], dt, float64(a.GetF()))
		if err != nil {
			return false, err
		}
		setInput(n, i+1, s)
	}
	return true, nil
}
