package quant

import (
	"context"
	"errors"
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// attentionSoftmaxes returns the Softmax nodes that produce attention
// probabilities (read by a MatMul, directly or through the Cast that
// Hugging Face's eager attention puts after a float32 softmax, an
// Identity or a Dropout), in node order.
func attentionSoftmaxes(m *graph.Model) []*graph.Node {
	var out []*graph.Node
	for _, n := range m.Graph.Nodes {
		if n.Op() == "Softmax" && n.Domain() == "" && readByMatMul(m.Graph, n.Output(0), 3) {
			out = append(out, n)
		}
	}
	return out
}

// readByMatMul reports whether a MatMul reads value, past at most hops
// value-preserving ops (Cast, Identity, Dropout).
func readByMatMul(g *graph.Graph, value string, hops int) bool {
	for _, c := range g.Consumers(value) {
		switch c.Op() {
		case "MatMul":
			return true
		case "Cast", "Identity", "Dropout":
			if hops > 0 && readByMatMul(g, c.Output(0), hops-1) {
				return true
			}
		}
	}
	return false
}

// unalignedError is an attention softmax whose probabilities are not
// laid out by sample (batch first, or batch·heads).
type unalignedError struct {
	softmax *graph.Node
	err     error
}

func (e *unalignedError) Error() string {
	return fmt.Sprintf("softmax %s: probabilities not laid out by sample: %v", e.softmax.Name(), e.err)
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
				return &unalignedError{softmax: sms[i], err: err}
			}
			for _, row := range s {
				scores[i] = append(scores[i], calib.NormalizeTokenWeights(row, calib.DefaultTokenRange[0], calib.DefaultTokenRange[1]))
			}
		}
		return nil
	})
	var unaligned *unalignedError
	if errors.As(err, &unaligned) {
		// Windowed attention (a Swin's): its keys are not the samples'
		// tokens, so no weight per layer row can be read from it.
		rep.note(o, "rsq: %v; token weights are uniform (plain GPTQ)", unaligned)
		return nil, nil
	}
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
