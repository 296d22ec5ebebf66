package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/graph"
)

func rsqWeights(ctx context.Context, m *graph.Model, layers []*Layer, d Dataset, o *Options, rep *Report) (map[*Layer]TokenWeights, error) {
	return nil, fmt.Errorf("quant: %w: rsq", ErrUnsupported)
}
