package quant

import (
	"context"
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// attentionSoftmaxes returns the Softmax nodes that produce attention
// probabilities (read by a MatMul), in node order.
func attentionSoftmaxes(m *graph.Model) []*graph.Node {
	var out []*graph.Node
	for _, n := range m.Graph.Nodes {
		if n.Op() != "Softmax" || n.Domain() != "" {
			continue
		}
		for _, c := range m.Graph.Consumers(n.Output(0)) {
			if c.Op() == "MatMul" {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// rsqWeights computes RSQ's token weights for each layer: the attention
// concentration of the layer's block (calib.AttentionConcentration,
// normalised to calib.DefaultTokenRange and mean 1). A layer belongs
// to the last attention Softmax before it in node order; layers before
// the first one (the first block's Q/K/V) take the first. Models without
// attention get none, which leaves GPTQ's Hessians uniform.
func rsqWeights(ctx context.Context, m *graph.Model, layers []*Layer, d Dataset, o *Options, rep *Report) (map[*Layer]TokenWeights, error) {
	sms := attentionSoftmaxes(m)
	if len(sms) == 0 {
		rep.note(o, "rsq: no attention softmax in the model; token weights are uniform (plain GPTQ)")
		return nil, nil
	}
	names := make([]string, len(sms))
	for i, n := range sms {
		names[i] = n.Output(0)
	}
	scores := make([]TokenWeights, len(sms))
	err := capture(ctx, m, d, names, o.BatchSize, func(vals map[string]tensor.Dense, _, batch int) error {
		for i, name := range names {
			probs, ok := vals[name]
			if !ok {
				continue
			}
			s, err := calib.AttentionConcentration(probs, batch)
			if err != nil {
				return fmt.Errorf("quant: rsq: softmax %s: %w", sms[i], err)
			}
			for _, row := range s {
				scores[i] = append(scores[i], calib.NormalizeTokenWeights(row, calib.DefaultTokenRange[0], calib.DefaultTokenRange[1]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[*Layer]TokenWeights{}
	for _, l := range layers {
		owner := 0
		for i, n := range sms {
			if n.Index < l.Node.Index {
				owner = i
			}
		}
		out[l] = scores[owner]
	}
	rep.note(o, "rsq: token weights from %d attention softmaxes", len(sms))
	return out, nil
}
