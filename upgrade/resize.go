package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() {
	register(upsample, "Upsample")
	register(resize, "Resize")
}

// upsample turns Upsample (deprecated at 10) into Resize. Upsample
// samples at x_out / scale (Resize's "asymmetric" transform) and its
// nearest mode takes the floor; before 9 the scales were an attribute.
func upsample(c *conv, n *graph.Node) (bool, error) {
	changed := false
	if c.crosses(9) {
		a := removeAttr(n, "scales")
		if a == nil {
			return false, fmt.Errorf("%w: Upsample without scales", ErrUnsupported)
		}
		t := graph.FloatTensor(n.Name()+"_scales", []int64{int64(len(a.Floats))}, a.Floats)
		setInput(n, 1, c.constant(t))
		changed = true
	}
	if c.to < 10 {
		return changed, nil
	}
	mode := n.StringAttr("mode", "nearest")
	switch mode {
	case "nearest", "linear":
	case "bilinear": // written by some old converters for 4-D linear
		mode = "linear"
	default:
		return false, fmt.Errorf("%w: Upsample mode %q", ErrUnsupported, mode)
	}
	n.Proto.OpType = ptr("Resize")
	setString(n, "mode", mode)
	return true, resize11(c, n)
}

// resize brings Resize-10 to 11 (see resize11) and refuses the one
// coordinate mode that 13 dropped.
func resize(c *conv, n *graph.Node) (bool, error) {
	changed := false
	if c.crosses(11) {
		if err := resize11(c, n); err != nil {
			return false, err
		}
		changed = true
	}
	if c.crosses(13) && n.StringAttr("coordinate_transformation_mode", "half_pixel") == "tf_half_pixel_for_nn" {
		return false, fmt.Errorf("%w: Resize coordinate_transformation_mode tf_half_pixel_for_nn (removed at 13)", ErrUnsupported)
	}
	return changed, nil
}

// resize11 rewrites a Resize-10-form node (X, scales) for Resize-11 and
// later: roi becomes input 1 (an empty tensor before 13, where it is not
// optional) and the coordinate transform and nearest rounding, whose
// defaults changed, are set to what Resize-10 did.
func resize11(c *conv, n *graph.Node) error {
	if c.to < 11 {
		return nil
	}
	scales := n.Input(1)
	if scales == "" {
		return fmt.Errorf("%w: Resize without scales", ErrUnsupported)
	}
	roi := ""
	if c.to < 13 {
		roi = c.constant(graph.FloatTensor(n.Name()+"_roi", []int64{0}, nil))
	}
	n.Proto.Input = []string{n.Input(0), roi, scales}
	setString(n, "coordinate_transformation_mode", "asymmetric")
	if n.StringAttr("mode", "nearest") == "nearest" {
		setString(n, "nearest_mode", "floor")
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
