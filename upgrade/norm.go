package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() {
	register(batchNorm, "BatchNormalization")
	register(dropout, "Dropout")
	register(groupNorm, "GroupNormalization")
}

// batchNorm drops spatial at 9 (spatial=1 was the only behaviour kept)
// and, at 14, the training outputs that inference mode may not have.
func batchNorm(c *conv, n *graph.Node) (bool, error) {
	changed := false
	if c.crosses(9) {
		if a := removeAttr(n, "spatial"); a != nil {
			if a.GetI() != 1 {
				return false, fmt.Errorf("%w: BatchNormalization spatial=%d (per-element statistics)", ErrUnsupported, a.GetI())
			}
			changed = true
		}
	}
	if c.crosses(14) && len(n.Proto.Output) > 1 {
		for _, o := range n.Proto.Output[1:] {
			if c.used_(o) {
				return false, fmt.Errorf("%w: BatchNormalization training output %q is read", ErrUnsupported, o)
			}
		}
		n.Proto.Output = n.Proto.Output[:1]
		changed = true
	}
	return changed, nil
}

// dropout moves ratio to input 1 at 12; the mask output changed from the
// data type to bool at 10, so a mask that is read cannot cross 10.
func dropout(c *conv, n *graph.Node) (bool, error) {
	changed := false
	if c.crosses(10) && len(n.Proto.Output) > 1 && n.Proto.Output[1] != "" {
		if c.used_(n.Proto.Output[1]) {
			return false, fmt.Errorf("%w: Dropout mask %q is read (its type became bool at 10)", ErrUnsupported, n.Proto.Output[1])
		}
		n.Proto.Output = n.Proto.Output[:1]
		changed = true
	}
	if c.crosses(12) {
		if a := removeAttr(n, "ratio"); a != nil {
			s, err := c.scalar(n.Name()+"_ratio", c.elemType(n.Input(0)), float64(a.GetF()))
			if err != nil {
				return false, err
			}
			setInput(n, 1, s)
			changed = true
		}
	}
	return changed, nil
}

// groupNorm: scale and bias went from one value per group to one per
// channel at 21.
func groupNorm(c *conv, n *graph.Node) (bool, error) {
	if c.crosses(21) {
		return false, fmt.Errorf("%w: GroupNormalization scale/bias became per channel at 21", ErrUnsupported)
	}
	return false, nil
}
