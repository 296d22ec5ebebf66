package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func rotateModel(m *graph.Model, o *Options, rep *Report) error {
	return fmt.Errorf("quant: %w: rotation", ErrUnsupported)
}
