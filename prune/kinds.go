package prune

import "strings"

// Group kinds, for per-kind ratios (pare prune --heads/--mlp/--embed)
// and reports:
//
//   - heads: the group's channels meet on the batch axis of a MatMul
//     between activations: whole attention heads (Q/K/V rows of a head
//     and the matching output-projection columns);
//   - head-dim: they meet on another axis of such a MatMul (head_dim
//     pruned uniformly across heads, Options.HeadDim, or attention over
//     unsplit features);
//   - embed: normalised by a layer norm (LayerNormalization, the
//     decomposed form, RMSNorm): the embedding / residual width. Removing
//     these channels changes the normalisation statistics (the group is
//     inexact), so selection leaves them alone unless
//     Settings.PruneEmbed;
//   - mlp: produced by a Gemm/MatMul weight and read by another one
//     (fc1 rows ↔ fc2 columns through the activation);
//   - channels: anything else (convolution channels).
const (
	KindHeads    = "heads"
	KindHeadDim  = "head-dim"
	KindEmbed    = "embed"
	KindMLP      = "mlp"
	KindChannels = "channels"
)

func (a *Analysis) classify() {
	ops := map[string]string{}
	for _, n := range a.g.Nodes {
		ops[n.Name()] = n.Op()
	}
	role := make([]string, len(a.Groups))
	for e, r := range a.marks {
		u, ok := a.unitOf[a.uf.find(e)]
		if !ok {
			continue
		}
		if role[u.group] == "" || r == "head" {
			role[u.group] = r
		}
	}
	for _, g := range a.Groups {
		switch {
		case role[g.ID] == "head":
			g.Kind = KindHeads
		case role[g.ID] == "head-dim":
			g.Kind = KindHeadDim
		case strings.Contains(g.Inexact, "norm"):
			g.Kind = KindEmbed
		case linearInOut(g, ops):
			g.Kind = KindMLP
		default:
			g.Kind = KindChannels
		}
	}
}

// linearInOut: a Gemm/MatMul weight produces the channels and another
// reads them.
func linearInOut(g *Group, ops map[string]string) bool {
	var out, in bool
	for _, m := range g.Members {
		if op := ops[m.Node]; op != "Gemm" && op != "MatMul" {
			continue
		}
		switch m.Kind {
		case KindWeightOut:
			out = true
		case KindWeightIn:
			in = true
		}
	}
	return out && in
}
