package graph

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInputShape marks an --input-shape that does not fit the model (an
// unknown input, another rank, a size that contradicts a static dim): a
// usage error.
var ErrInputShape = errors.New("input shape does not fit the model")

// ParseInputShape reads "NAME=1,3,640,640" (the last "=" separates the
// name, so names may contain one).
func ParseInputShape(s string) (string, []int64, error) {
	i := strings.LastIndex(s, "=")
	if i <= 0 {
		return "", nil, fmt.Errorf("%w: %q: want NAME=D1,D2,...", ErrInputShape, s)
	}
	name := s[:i]
	var dims []int64
	for _, f := range strings.Split(s[i+1:], ",") {
		d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || d <= 0 {
			return "", nil, fmt.Errorf("%w: %q: dim %q is not a positive integer", ErrInputShape, s, f)
		}
		dims = append(dims, d)
	}
	return name, dims, nil
}

// SetInputShapes fixes the sizes of graph inputs for shape inference and
// counting (InferShapes, Count, Summarize use them; the model's declared
// inputs are not changed, so a saved model keeps its symbolic dims). Each
// shape must have the input's declared rank and agree with its static
// dims.
func (m *Model) SetInputShapes(shapes map[string][]int64) error {
	for _, name := range sortedNames(shapes) {
		dims := shapes[name]
		v := m.Graph.Value(name)
		if v == nil || !v.IsInput || v.Initializer != nil {
			return fmt.Errorf("%w: %q is not a graph input (inputs: %s)", ErrInputShape, name, strings.Join(inputNames(m.Graph), ", "))
		}
		if v.Info == nil {
			continue
		}
		decl, ok := ShapeFromInfo(v.Info)
		if !ok || !decl.Ranked {
			continue
		}
		if len(decl.Dims) != len(dims) {
			return fmt.Errorf("%w: input %q has rank %d (%v), got %d sizes", ErrInputShape, name, len(decl.Dims), decl, len(dims))
		}
		for i, d := range decl.Dims {
			if s, known := d.Value(); known && s != dims[i] {
				return fmt.Errorf("%w: input %q dim %d is %d (%v), got %d", ErrInputShape, name, i, s, decl, dims[i])
			}
		}
	}
	m.InputShapes = shapes
	return nil
}

// SymbolicSizes lists the symbolic dims, after SetInputShapes, of the
// graph inputs of rank 3 or more past the batch axis ("input[2]=height"):
// image sizes and feature sizes, which MACs scale with and for which 1 is
// no estimate. A symbolic batch, and the sequence of a [batch, seq] token
// input, are counted as 1 by convention instead.
func (m *Model) SymbolicSizes() []string {
	var out []string
	for _, v := range m.Graph.Inputs {
		if _, fixed := m.InputShapes[v.Name]; fixed || v.Info == nil {
			continue
		}
		t, ok := ShapeFromInfo(v.Info)
		if !ok || !t.Ranked || len(t.Dims) < 3 {
			continue
		}
		for i, d := range t.Dims[1:] {
			if !d.IsKnown() {
				out = append(out, fmt.Sprintf("%s[%d]=%s", v.Name, i+1, d))
			}
		}
	}
	return out
}

func inputNames(g *Graph) []string {
	var out []string
	for _, v := range g.Inputs {
		out = append(out, v.Name)
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
