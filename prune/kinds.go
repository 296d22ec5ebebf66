package prune

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Group kinds, for per-kind ratios (pare prune --heads/--mlp/--embed)
// and reports:
//
//   - heads: the group's channels meet on the batch axis of a MatMul
//     between activations: whole attention heads (Q/K/V rows of a head
//     and the matching output-projection columns);
//   - kv-groups: with Options.KVGroups, grouped-query attention's whole
//     KV groups: a key/value head with the query heads it serves;
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
	KindKVGroups = "kv-groups"
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
		if rank(r) > rank(role[u.group]) {
			role[u.group] = r
		}
	}
	for _, g := range a.Groups {
		switch {
		case role[g.ID] == roleKVGroup:
			g.Kind = KindKVGroups
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

// rank orders attention roles: a group with any KV-group element is a
// KV group, else with any head element heads.
func rank(role string) int {
	switch role {
	case roleKVGroup:
		return 3
	case "head":
		return 2
	case "":
		return 0
	}
	return 1
}

// linearInOut: a Gemm/MatMul weight produces the channels and another
// reads them (MatMulNBits: its scales carry the weight kinds).
func linearInOut(g *Group, ops map[string]string) bool {
	var out, in bool
	for _, m := range g.Members {
		if op := ops[m.Node]; op != "Gemm" && op != "MatMul" && op != "MatMulNBits" {
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

// kindRemovals returns how many channels each group with a kind ratio
// loses (Settings.KindRatios). order lists each group's indices from
// least to most important; at most maxRm[g] of them may go (covers).
func kindRemovals(fixed []*Group, order map[int][]int, maxRm map[int]int, scores map[int][]float64, s Settings) (map[int]int, error) {
	rm := map[int]int{}
	if s.Scope == "local" {
		for _, g := range fixed {
			keep := g.Size - int(math.Floor(s.KindRatios[g.Kind]*float64(g.Size)+1e-9))
			keep = max(keep, s.minKeep(g), g.Size-maxRm[g.ID])
			rm[g.ID] = g.Size - s.roundKeep(keep, g)
		}
		return rm, nil
	}
	type cand struct {
		score      float64
		group, pos int
	}
	byKind := map[string][]*Group{}
	var kinds []string
	for _, g := range fixed {
		if byKind[g.Kind] == nil {
			kinds = append(kinds, g.Kind)
		}
		byKind[g.Kind] = append(byKind[g.Kind], g)
	}
	for _, k := range kinds {
		var all []cand
		total := 0
		for _, g := range byKind[k] {
			total += g.Size
			for pos, i := range order[g.ID][:min(g.Size-s.minKeep(g), maxRm[g.ID])] {
				all = append(all, cand{scores[g.ID][i], g.ID, pos})
			}
		}
		sort.SliceStable(all, func(x, y int) bool {
			if all[x].score != all[y].score {
				return all[x].score < all[y].score
			}
			if all[x].group != all[y].group {
				return all[x].group < all[y].group
			}
			return all[x].pos < all[y].pos
		})
		want := int(math.Round(s.KindRatios[k] * float64(total)))
		if want > len(all) {
			return nil, fmt.Errorf("prune: %w: %d %s channels asked, at most %d removable under max-layer-ratio %v",
				ErrTarget, want, k, len(all), s.MaxLayerRatio)
		}
		for _, c := range all[:want] {
			rm[c.group]++
		}
	}
	for _, g := range fixed {
		if rm[g.ID] > 0 {
			rm[g.ID] = g.Size - s.roundKeep(g.Size-rm[g.ID], g)
		}
	}
	return rm, nil
}
