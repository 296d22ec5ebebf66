package prune

import (
	"fmt"
	"sort"
	"strings"
)

// Covers. An index of a group usually owns a few positions of each
// member, but couplings can make many positions of one tensor share an
// index: in ShuffleNetV2 each channel shuffle couples channel c of the
// pass-through half with channel c of the branch, and the Split of the
// next unit keeps the first half of the interleaved result, so unit after
// unit the pass-through half folds onto fewer indices of its stage's group
// until every channel at the end of the stage maps to index 0. That
// coupling is correct (those positions do have to go together), but
// removing index 0 would leave those tensors with no channel at all while
// the group keeps others, and a zero-width tensor is not a valid model
// (a depthwise Conv with group 0, an ambiguous Reshape −1).
//
// A cover is the set of distinct indices of one labeled dimension or
// member axis with no fixed position, recorded when it is smaller than
// the group: at least one index of every cover must be kept. Selection
// orders removals so that no cover empties (removalOrder), and Apply
// refuses a selection that empties a tensor (checkCovers).

// buildCovers records the covers of every prunable group.
func (a *Analysis) buildCovers() {
	seen := map[int]map[string]bool{}
	stamp := map[int][]int{} // group → last dim that saw each index
	dim := 0
	index := make([]int, a.uf.len()) // element → group index, -1 for kept classes
	for e := range index {
		index[e] = -1
		if u, ok := a.unitOf[a.uf.find(int32(e))]; ok {
			index[e] = u.index
		}
	}
	add := func(l []int32) {
		gid, ok := a.groupOf(l)
		if !ok || a.Groups[gid].Frozen {
			return
		}
		grp := a.Groups[gid]
		if grp.Size == 1 {
			return
		}
		dim++
		st := stamp[gid]
		if st == nil {
			st = make([]int, grp.Size)
			stamp[gid] = st
		}
		var idx []int
		for _, e := range l {
			if e < 0 || index[e] < 0 {
				return // fixed positions: the dim never empties
			}
			if i := index[e]; st[i] != dim {
				st[i] = dim
				idx = append(idx, i)
				if len(idx) == grp.Size {
					return // emptying it means emptying the group, refused anyway
				}
			}
		}
		sort.Ints(idx)
		key := fmt.Sprint(idx)
		if seen[gid] == nil {
			seen[gid] = map[string]bool{}
		}
		if !seen[gid][key] {
			seen[gid][key] = true
			grp.covers = append(grp.covers, idx)
		}
	}
	for _, v := range a.sortedLabeledValues() {
		for _, ax := range sortedAxes(a.labels[v]) {
			add(a.labels[v][ax])
		}
	}
	for _, k := range a.porder {
		add(a.params[k].labels)
	}
}

// removalOrder reorders pref (a permutation of the group's indices, least
// important first) so that every prefix of length ≤ max can be removed
// without emptying a cover: indices are taken greedily in pref order,
// and one whose removal would remove the last kept index of a cover is
// moved, in order, after the removable ones. Without covers it returns
// pref and the group size.
func (g *Group) removalOrder(pref []int) (order []int, max int) {
	if len(g.covers) == 0 {
		return pref, len(pref)
	}
	left := make([]int, len(g.covers)) // kept indices per cover
	in := make([][]int, g.Size)        // covers of each index
	for c, idx := range g.covers {
		left[c] = len(idx)
		for _, i := range idx {
			in[i] = append(in[i], c)
		}
	}
	var rm, stay []int
	for _, i := range pref {
		ok := true
		for _, c := range in[i] {
			if left[c] <= 1 {
				ok = false
				break
			}
		}
		if !ok {
			stay = append(stay, i)
			continue
		}
		for _, c := range in[i] {
			left[c]--
		}
		rm = append(rm, i)
	}
	return append(rm, stay...), len(rm)
}

// checkCovers refuses a selection that would leave a labeled dimension
// or a member axis of a pruned group with no position while the group
// keeps others: the written model would have a zero-width tensor.
func (a *Analysis) checkCovers(ap *applier) error {
	touched := map[int]bool{}
	for root := range ap.pruned {
		touched[a.unitOf[root].group] = true
	}
	check := func(what string, l []int32) error {
		gid, ok := a.groupOf(l)
		if !ok || !touched[gid] {
			return nil
		}
		for _, e := range l {
			if e < 0 || !ap.pruned[a.uf.find(e)] {
				return nil
			}
		}
		grp := a.Groups[gid]
		var idx []string
		seen := map[int]bool{}
		for _, i := range a.indexMap(l) {
			if !seen[i] {
				seen[i] = true
				idx = append(idx, fmt.Sprint(i))
			}
		}
		return fmt.Errorf("prune: %w: group %d (%s): removing indices %s would leave %s with no channel (all its %d positions map to them) while the group keeps others",
			ErrInvalidOption, gid, grp.Name, strings.Join(idx, ", "), what, len(l))
	}
	for _, v := range a.sortedLabeledValues() {
		for _, ax := range sortedAxes(a.labels[v]) {
			if err := check(fmt.Sprintf("%q axis %d", v, ax), a.labels[v][ax]); err != nil {
				return err
			}
		}
	}
	for _, k := range a.porder {
		if err := check(fmt.Sprintf("tensor %q axis %d", k.tensor, k.axis), a.params[k].labels); err != nil {
			return err
		}
	}
	return nil
}
