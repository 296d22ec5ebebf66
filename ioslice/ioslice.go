// Package ioslice records which positions of the original model's inputs
// and outputs a pruned model keeps, and slices tensors to match.
//
// Pruning the KV heads of a decoder that takes its cache as graph inputs
// (past keys and values) and returns it as outputs (present) shrinks the
// cache's head axis: the model's interface changes. The pruned model
// carries the kept positions in its metadata_props under Key, so that
// data made for the original model (calibration samples, a check's
// inputs) can still be fed to it, and its outputs compared with the
// original's kept positions.
package ioslice

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// Key is the metadata_props key of the map.
const Key = "pare.kept_positions"

// Axis is one axis of an input or output that lost positions.
type Axis struct {
	Axis int `json:"axis"`
	// Of is the axis' size in the original model.
	Of int64 `json:"of"`
	// Keep lists the original positions the pruned model keeps,
	// ascending.
	Keep []int64 `json:"keep"`
}

// Map gives, by input or output name, the axes that lost positions.
type Map map[string][]Axis

// FromModel reads the map of m; an empty map when m has none.
func FromModel(m *onnx.ModelProto) (Map, error) {
	for _, e := range m.GetMetadataProps() {
		if e.GetKey() == Key {
			return Parse(e.GetValue())
		}
	}
	return Map{}, nil
}

// Parse decodes the metadata value.
func Parse(s string) (Map, error) {
	m := Map{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("ioslice: metadata %s: %w", Key, err)
	}
	for name, axes := range m {
		for _, a := range axes {
			if a.Axis < 0 || a.Of <= 0 || len(a.Keep) == 0 || !slices.IsSorted(a.Keep) || a.Keep[0] < 0 || a.Keep[len(a.Keep)-1] >= a.Of {
				return nil, fmt.Errorf("ioslice: metadata %s: %q axis %d: kept positions %v of %d", Key, name, a.Axis, a.Keep, a.Of)
			}
		}
	}
	return m, nil
}

// Write stores the map in m's metadata_props, replacing an older one;
// an empty map removes the entry.
func (mp Map) Write(m *onnx.ModelProto) error {
	props := m.MetadataProps[:0]
	for _, e := range m.MetadataProps {
		if e.GetKey() != Key {
			props = append(props, e)
		}
	}
	m.MetadataProps = props
	if len(mp) == 0 {
		return nil
	}
	b, err := json.Marshal(mp)
	if err != nil {
		return err
	}
	key, val := Key, string(b)
	m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: &key, Value: &val})
	return nil
}

// Restrict records that axis of name, of size positions in the model
// the map describes, keeps only the positions kept (indices into that
// axis, ascending). A model pruned twice composes: the map keeps
// pointing at the original model's positions.
func (mp Map) Restrict(name string, axis int, size int64, kept []int64) {
	for i, a := range mp[name] {
		if a.Axis == axis {
			keep := make([]int64, len(kept))
			for j, k := range kept {
				keep[j] = a.Keep[k]
			}
			mp[name][i].Keep = keep
			return
		}
	}
	mp[name] = append(mp[name], Axis{Axis: axis, Of: size, Keep: slices.Clone(kept)})
	sort.Slice(mp[name], func(i, j int) bool { return mp[name][i].Axis < mp[name][j].Axis })
}

// Slice returns t, a tensor of the original model's name, restricted to
// the positions the pruned model keeps. A tensor that already has the
// kept sizes is returned as it is; any other size is an error naming the
// value.
func (mp Map) Slice(name string, t tensor.Dense) (tensor.Dense, error) {
	for _, a := range mp[name] {
		if a.Axis >= len(t.Shape) {
			return tensor.Dense{}, fmt.Errorf("ioslice: %q is %v: no axis %d", name, t.Shape, a.Axis)
		}
		switch t.Shape[a.Axis] {
		case int64(len(a.Keep)):
		case a.Of:
			var err error
			if t, err = t.Take(a.Axis, a.Keep); err != nil {
				return tensor.Dense{}, fmt.Errorf("ioslice: %q: %w", name, err)
			}
		default:
			return tensor.Dense{}, fmt.Errorf("ioslice: %q is %v: axis %d has %d positions, the pruned model keeps %d of the original's %d", name, t.Shape, a.Axis, t.Shape[a.Axis], len(a.Keep), a.Of)
		}
	}
	return t, nil
}

// SliceAll is Slice over a feed; entries the map does not name are
// shared, not copied.
func (mp Map) SliceAll(feed map[string]tensor.Dense) (map[string]tensor.Dense, error) {
	if len(mp) == 0 {
		return feed, nil
	}
	out := make(map[string]tensor.Dense, len(feed))
	for name, t := range feed {
		s, err := mp.Slice(name, t)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// Changes returns the axes of after that before does not record as they
// are, by name: what one pruning run changed in the interface.
func Changes(before, after Map) Map {
	out := Map{}
	for name, axes := range after {
		for _, a := range axes {
			if !slices.ContainsFunc(before[name], func(b Axis) bool {
				return b.Axis == a.Axis && b.Of == a.Of && slices.Equal(b.Keep, a.Keep)
			}) {
				out[name] = append(out[name], a)
			}
		}
	}
	return out
}

// Summary is one line for a report: how many inputs and outputs lost
// positions, the first few named.
func (mp Map) Summary() string {
	names := slices.Sorted(maps.Keys(mp))
	var parts []string
	for _, name := range names {
		for _, a := range mp[name] {
			parts = append(parts, fmt.Sprintf("%s axis %d keeps %d of %d", name, a.Axis, len(a.Keep), a.Of))
		}
	}
	if len(parts) > 3 {
		parts = append(parts[:3], "…")
	}
	line := fmt.Sprintf("%d model inputs and outputs lost positions (%s); the kept positions are in the model's metadata %q, from which pare check and calibration slice data made for the original; a runtime feeding the cache must use the new sizes",
		len(names), strings.Join(parts, ", "), Key)
	if !mp.uniform() {
		line += "; they keep different counts on one axis (a cache's heads per layer), which a runtime configured with one count for every layer (onnxruntime-genai's num_key_value_heads) cannot feed: --scope local keeps the same count everywhere"
	}
	return line
}

// uniform reports whether every recorded axis of the same index and
// original size keeps the same number of positions.
func (mp Map) uniform() bool {
	type key struct {
		axis int
		of   int64
	}
	kept := map[key]int{}
	for _, axes := range mp {
		for _, a := range axes {
			k := key{a.Axis, a.Of}
			if n, ok := kept[k]; ok && n != len(a.Keep) {
				return false
			}
			kept[k] = len(a.Keep)
		}
	}
	return true
}

// Shape maps sizes given for the original model's name (an
// --input-shape) to the pruned model's: an axis of the original's size
// takes the kept count.
func (mp Map) Shape(name string, shape []int64) []int64 {
	out := slices.Clone(shape)
	for _, a := range mp[name] {
		if a.Axis < len(out) && out[a.Axis] == a.Of {
			out[a.Axis] = int64(len(a.Keep))
		}
	}
	return out
}
