package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() { register(pad, "Pad") }

// pad moves pads and the constant value to inputs 1 and 2 at 11 (Pad-2
// took them as attributes; its mode attribute stays).
func pad(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(11) {
		return false, nil
	}
	p := removeAttr(n, "pads")
	if p == nil {
		return false, fmt.Errorf("%w: Pad without pads", ErrUnsupported)
	}
	setInput(n, 1, c.int64s(n.Name()+"_pads", p.Ints))
	if v := removeAttr(n, "value"); v != nil && v.GetF() != 0 {
		s, err := c.scalar(n.Name()+"_value", c.elemType(n.Input(0)), float64(v.GetF()))
		if err != nil {
			return false, err
		}
		setInput(n, 2, s)
	}
	return true, nil
}
