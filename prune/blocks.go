package prune

import (
	"fmt"
)

// Blocks. A grouped Conv couples the channel at one offset of every group
// (op_conv.go): an index of the group on either side of it is one
// channel in each of g blocks, and pruning an index removes the same
// offset everywhere. Which channel sits at which offset inside a block
// is the exporter's accident, so the channels of a block can be
// reordered, the same way in every tensor that holds them, without
// changing what the model computes. Sorting each block by importance
// before selection puts the least important channel of every block at
// the same offset, and removing an index then removes each block's own
// weakest channel: per-group selection where ONNX's `group` attribute
// only allows equal groups.

// blockMember is one member of a blocked group, ready to permute.
type blockMember struct {
	Member
	// perPart: the member is a grouped Conv weight's input axis (W axis
	// 1): each index is one position, and the rows of group j read block
	// j's channel there. Otherwise the member's axis holds the blocks
	// end to end, each with the same index at the same place.
	perPart bool
	rows    int64 // perPart: rows of W per group
}

// Blocks returns the number of blocks g ≥ 2 in which grp's channels
// repeat, with a reason when they do not (then 0): every member is
// either a grouped Conv's input axis over g groups or an axis laid out
// as g equal blocks holding each index once.
func (a *Analysis) Blocks(grp *Group) (int, string) {
	_, g, why := a.blockMembers(grp)
	return g, why
}

func (a *Analysis) blockMembers(grp *Group) ([]blockMember, int, string) {
	if grp.Frozen || grp.Kind != KindChannels || len(grp.Interface) > 0 {
		return nil, 0, "not a channel group pruning may reorder"
	}
	blocks := 0
	agree := func(g int) bool {
		if blocks == 0 {
			blocks = g
		}
		return g == blocks
	}
	var out []blockMember
	for _, mem := range grp.Members {
		if mem.Copy {
			continue // a constant fill: the same value at every position
		}
		if _, ok := a.g.Constant(mem.Tensor); !ok {
			return nil, 0, fmt.Sprintf("%s: %q is not a plain constant", mem.Node, mem.Tensor)
		}
		if g, rows, ok := a.groupedInput(mem, grp.Size); ok {
			if !agree(g) {
				return nil, 0, fmt.Sprintf("%s: %d groups, not %d", mem.Node, g, blocks)
			}
			out = append(out, blockMember{Member: mem, perPart: true, rows: rows})
			continue
		}
		g := tiledBlocks(mem.Map, grp.Size)
		if g < 2 || !agree(g) {
			return nil, 0, fmt.Sprintf("%s: %q does not hold the channels in equal blocks", mem.Node, mem.Tensor)
		}
		out = append(out, blockMember{Member: mem})
	}
	if blocks < 2 {
		return nil, 0, "no blocks"
	}
	return out, blocks, ""
}

// groupedInput reports whether mem is the input axis of a grouped Conv
// weight holding each of size indices once, with its group count and
// rows per group.
func (a *Analysis) groupedInput(mem Member, size int) (g int, rows int64, ok bool) {
	if mem.Kind != KindWeightIn || mem.Axis != 1 || len(mem.Map) != size || !covers(mem.Map, size) {
		return 0, 0, false
	}
	for _, n := range a.g.Consumers(mem.Tensor) {
		if n.Name() != mem.Node || n.Op() != "Conv" || n.Input(1) != mem.Tensor {
			continue
		}
		t, _ := a.g.Constant(mem.Tensor)
		g := n.IntAttr("group", 1)
		if g < 2 || len(t.Dims) < 2 || t.Dims[0]%g != 0 || t.Dims[1] == 1 {
			return 0, 0, false
		}
		return int(g), t.Dims[0] / g, true
	}
	return 0, 0, false
}

// tiledBlocks returns g when m is g equal blocks with the same index at
// the same place in each, each of size indices once per block (other
// positions -1); 0 otherwise.
func tiledBlocks(m IndexMap, size int) int {
	first := -1
	for p, i := range m {
		if i == 0 {
			first = p
			break
		}
	}
	for g := 2; g <= len(m); g++ {
		if len(m)%g != 0 {
			continue
		}
		b := len(m) / g
		if first >= b {
			return 0 // index 0 must appear in the first block
		}
		if !covers(m[:b], size) {
			continue
		}
		same := true
		for p := b; p < len(m) && same; p++ {
			same = m[p] == m[p%b]
		}
		if same {
			return g
		}
	}
	return 0
}

// covers reports whether m holds each index below size exactly once
// (other positions -1).
func covers(m IndexMap, size int) bool {
	seen := make([]bool, size)
	n := 0
	for _, i := range m {
		switch {
		case i < 0:
		case i >= size || seen[i]:
			return false
		default:
			seen[i] = true
			n++
		}
	}
	return n == size
}

// PermuteBlocks reorders the channels of every block of grp in every
// member: in block j, index i takes the channel that index from[j][i]
// held. The model computes the same function afterwards; grp's
// analysis stays valid (the structure does not change).
func (a *Analysis) PermuteBlocks(grp *Group, from [][]int) error {
	mems, g, why := a.blockMembers(grp)
	if g == 0 {
		return fmt.Errorf("prune: %w: group %d: %s", ErrUnsupported, grp.ID, why)
	}
	if len(from) != g {
		return fmt.Errorf("prune: group %d has %d blocks, %d orders given", grp.ID, g, len(from))
	}
	for j, f := range from {
		if !covers(IndexMap(f), grp.Size) || len(f) != grp.Size {
			return fmt.Errorf("prune: block %d of group %d: not an order of %d channels", j, grp.ID, grp.Size)
		}
	}
	done := map[paramKey]bool{} // a tensor shared by two readers moves once
	for _, mem := range mems {
		k := paramKey{tensor: mem.Tensor, axis: mem.Axis}
		if done[k] {
			continue
		}
		done[k] = true
		t, err := a.mutableConst(mem.Tensor)
		if err != nil {
			return err
		}
		src := blockSources(mem, g, from)
		if err := gatherAxis(t, mem.Axis, src); err != nil {
			return fmt.Errorf("prune: reorder %q axis %d: %w", mem.Tensor, mem.Axis, err)
		}
	}
	return nil
}

// blockSources gives, per position of the outer axes (prod of dims
// before the member's axis; one entry for all when it does not vary),
// the old position each position of the axis takes.
func blockSources(mem blockMember, g int, from [][]int) func(outer int64) []int {
	if mem.perPart {
		at := positionOf(mem.Map)
		per := make([][]int, g)
		for j := range g {
			per[j] = make([]int, len(mem.Map))
			for p, i := range mem.Map {
				per[j][p] = at[from[j][i]]
			}
		}
		return func(row int64) []int { return per[row/mem.rows] }
	}
	b := len(mem.Map) / g
	at := positionOf(mem.Map[:b])
	src := make([]int, len(mem.Map))
	for p, i := range mem.Map {
		j := p / b
		src[p] = p
		if i >= 0 {
			src[p] = j*b + at[from[j][i]]
		}
	}
	return func(int64) []int { return src }
}

// positionOf inverts an index map that holds each index once.
func positionOf(m IndexMap) map[int]int {
	at := make(map[int]int, len(m))
	for p, i := range m {
		if i >= 0 {
			at[i] = p
		}
	}
	return at
}
