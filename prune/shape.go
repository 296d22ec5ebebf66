package prune

import (
	"github.com/pare-dev/pare/graph"
)

// Static shapes, best effort: -1 is an unknown dim, nil an unknown rank.
// graph.InferShapes seeds them (it folds shape computations, so convs
// after a computed Reshape have static shapes too); rules fill what it
// leaves unknown, from graph inputs, initializers and value_info.

func (a *Analysis) seedShapes() {
	if inf, err := graph.InferShapes(a.Model); err == nil {
		a.inferred = inf
		for _, v := range a.g.Values() {
			ts, ok := inf.Of(v.Name)
			if !ok || !ts.Ranked {
				continue
			}
			s := make([]int64, len(ts.Dims))
			for i, d := range ts.Dims {
				if x, ok := d.Value(); ok {
					s[i] = x
				} else {
					s[i] = -1
				}
			}
			a.shapes[v.Name] = s
		}
	}
	for _, v := range a.g.Values() {
		if v.Initializer != nil {
			a.shapes[v.Name] = append([]int64{}, v.Initializer.Dims...)
			continue
		}
		if s := infoShape(v); s != nil {
			// value_info may leave dims unknown that inference knows
			if old := a.shapes[v.Name]; len(old) == len(s) {
				for i := range s {
					if s[i] < 0 {
						s[i] = old[i]
					}
				}
			}
			a.shapes[v.Name] = s
		}
	}
}

func infoShape(v *graph.Value) []int64 {
	if v.Info == nil {
		return nil
	}
	tt := v.Info.GetType().GetTensorType()
	if tt == nil || tt.Shape == nil {
		return nil
	}
	s := make([]int64, len(tt.Shape.Dim))
	for i, d := range tt.Shape.Dim {
		if d.GetDimParam() == "" && d.GetDimValue() > 0 {
			s[i] = d.GetDimValue()
		} else {
			s[i] = -1
		}
	}
	return s
}

// shape returns the static shape of value name.
func (a *Analysis) shape(name string) []int64 {
	if s, ok := a.shapes[name]; ok {
		return s
	}
	if t, ok := a.g.Constant(name); ok {
		return append([]int64{}, t.Dims...)
	}
	return nil
}

func (a *Analysis) setShape(name string, s []int64) {
	if name == "" || s == nil {
		return
	}
	if _, ok := a.shapes[name]; ok {
		// value_info or a graph output declaration: keep what the model
		// says, but fill unknown dims the rule knows.
		old := a.shapes[name]
		if len(old) == len(s) {
			for i := range old {
				if old[i] < 0 {
					old[i] = s[i]
				}
			}
			return
		}
	}
	a.shapes[name] = append([]int64{}, s...)
}

// normAxis maps a possibly negative axis to [0, rank), or -1.
func normAxis(axis int64, rank int) int {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return -1
	}
	return int(axis)
}

// dimOf returns dim i of s or -1.
func dimOf(s []int64, i int) int64 {
	if i < 0 || i >= len(s) {
		return -1
	}
	return s[i]
}

func prod(s []int64) int64 {
	p := int64(1)
	for _, d := range s {
		if d < 0 {
			return -1
		}
		p *= d
	}
	return p
}
