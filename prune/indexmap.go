package prune

import (
	"encoding/json"
	"fmt"
)

// IndexMap maps each position of a member's axis to an index of its
// group's index space, or -1 for a position that is never pruned (for
// example a channel of another, frozen source concatenated in). Identity,
// offset, block expansion, repetition and permutation maps are all
// IndexMaps; JSON stores them as runs.
type IndexMap []int

// run is positions [Pos, Pos+Len) mapping to Index + k·Step.
type run struct {
	Pos   int `json:"pos"`
	Len   int `json:"len"`
	Index int `json:"index"`
	Step  int `json:"step"`
}

// runs compresses m: maximal stretches where the index grows by a
// constant step (0 for blocks, 1 for identity and offsets).
func (m IndexMap) runs() []run {
	var out []run
	for i := 0; i < len(m); {
		j, step := i+1, 0
		if j < len(m) {
			step = m[j] - m[i]
			if m[i] < 0 || m[j] < 0 {
				step = 0
			}
		}
		for j < len(m) && m[j] == m[i]+(j-i)*step && (m[i] >= 0) == (m[j] >= 0) {
			j++
		}
		out = append(out, run{Pos: i, Len: j - i, Index: m[i], Step: step})
		i = j
	}
	return out
}

// MarshalJSON writes the map as runs.
func (m IndexMap) MarshalJSON() ([]byte, error) { return json.Marshal(m.runs()) }

// UnmarshalJSON reads runs, rejecting gaps and overlaps.
func (m *IndexMap) UnmarshalJSON(b []byte) error {
	var rs []run
	if err := json.Unmarshal(b, &rs); err != nil {
		return err
	}
	var out IndexMap
	for _, r := range rs {
		if r.Pos != len(out) || r.Len <= 0 || r.Len > 1<<28 {
			return fmt.Errorf("prune: index map run at %d is not contiguous", r.Pos)
		}
		for k := 0; k < r.Len; k++ {
			if r.Index < 0 {
				out = append(out, -1)
			} else {
				out = append(out, r.Index+k*r.Step)
			}
		}
	}
	*m = out
	return nil
}

// Equal reports whether two maps are the same.
func (m IndexMap) Equal(o IndexMap) bool {
	if len(m) != len(o) {
		return false
	}
	for i := range m {
		if m[i] != o[i] {
			return false
		}
	}
	return true
}
