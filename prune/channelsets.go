package prune

import "github.com/pare-dev/pare/graph"

// ChannelSets analyses m and returns its groups as channel sets, for
// transforms above the graph layer that follow a channel axis through
// the model without tracing it themselves (quant's fused rotation of the
// residual stream takes them as an option). m is not changed.
func ChannelSets(m *graph.Model) ([]graph.ChannelSet, error) {
	a, err := Analyze(m, Options{})
	if err != nil {
		return nil, err
	}
	return a.ChannelSets(), nil
}

// ChannelSets returns one channel set per group with the value axes
// and constant axes (its members) that carry all of the group's
// channels, one per position, in index order. Axes that hold part of a group, or its channels in another
// order (a Concat along the channel axis, a channel shuffle), or several
// positions per channel (MatMulNBits blocks) are left out: a set member
// is an axis whose position p is the group's channel p.
func (a *Analysis) ChannelSets() []graph.ChannelSet {
	sets := make([]graph.ChannelSet, 0, len(a.Groups))
	for _, g := range a.Groups {
		s := graph.ChannelSet{Channels: g.Size}
		for _, d := range g.Dims {
			if a.inOrder(a.labels[d.Value][d.Axis], g.Size) {
				s.Axes = append(s.Axes, graph.ValueAxis{Value: d.Value, Axis: d.Axis})
			}
		}
		// Constants (weights, biases, tables, position embeddings) are
		// members of the group as parameters.
		seen := map[graph.ValueAxis]bool{}
		for _, mem := range g.Members {
			va := graph.ValueAxis{Value: mem.Tensor, Axis: mem.Axis}
			if !seen[va] && inOrder(mem.Map, g.Size) {
				seen[va] = true
				s.Axes = append(s.Axes, va)
			}
		}
		sets = append(sets, s)
	}
	return sets
}

// inOrder reports whether labels l hold indices 0, 1, …, size−1 of their
// group, one per position.
func (a *Analysis) inOrder(l []int32, size int) bool {
	return len(l) == size && inOrder(a.indexMap(l), size)
}

func inOrder(m IndexMap, size int) bool {
	if len(m) != size {
		return false
	}
	for i, idx := range m {
		if idx != i {
			return false
		}
	}
	return true
}
