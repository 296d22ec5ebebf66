package upgrade

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func init() {
	register(scatter, "Scatter")
	register(roiAlign, "RoiAlign")
	register(gridSample, "GridSample")
	register(scan, "Scan")
	register(removed, "Affine", "Crop", "DynamicSlice", "GRUUnit", "GivenTensorFill", "ImageScaler",
		"ParametricSoftplus", "Scale", "ScaledTanh", "ConstantFill")
}

// scatter renames Scatter (deprecated at 11) to ScatterElements, which
// has the same inputs, axis and meaning.
func scatter(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(11) {
		return false, nil
	}
	n.Proto.OpType = ptr("ScatterElements")
	return true, nil
}

// roiAlign keeps RoiAlign-10's pixel model, which 16 made a non-default
// coordinate_transformation_mode.
func roiAlign(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(16) || n.Attr("coordinate_transformation_mode") != nil {
		return false, nil
	}
	setString(n, "coordinate_transformation_mode", "output_half_pixel")
	return true, nil
}

// gridSample renames the modes that 20 renamed.
func gridSample(c *conv, n *graph.Node) (bool, error) {
	if !c.crosses(20) {
		return false, nil
	}
	switch n.StringAttr("mode", "bilinear") {
	case "bilinear":
		setString(n, "mode", "linear")
	case "bicubic":
		setString(n, "mode", "cubic")
	default:
		return false, nil
	}
	return true, nil
}

// scan: Scan-8 had a batch axis and sequence lengths that 9 removed.
func scan(c *conv, n *graph.Node) (bool, error) {
	if c.crosses(9) {
		return false, fmt.Errorf("%w: Scan-8 (batch axis and sequence_lens were removed at 9)", ErrUnsupported)
	}
	return false, nil
}

// removed are experimental ops that later opsets no longer define.
func removed(c *conv, n *graph.Node) (bool, error) {
	return false, fmt.Errorf("%w: %s is not defined in later opsets", ErrUnsupported, n.Op())
}
