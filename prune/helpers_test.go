package prune

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

const f32 = onnx.TensorProto_FLOAT

// ramp returns n distinct small values.
func ramp(n int64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7+1) * 0.1
	}
	return v
}

func initW(b *build.Builder, name string, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return b.Init(name, dims, ramp(n))
}

func analyzeBuilt(t *testing.T, b *build.Builder) (*graph.Model, *Analysis) {
	t.Helper()
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Analyze(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, a
}

// groupOfNode returns the group first produced by node.
func groupOfNode(t *testing.T, a *Analysis, node string) *Group {
	t.Helper()
	for _, g := range a.Groups {
		if g.Name == node {
			return g
		}
	}
	var names []string
	for _, g := range a.Groups {
		names = append(names, g.Name)
	}
	t.Fatalf("no group from %s (have %v)", node, names)
	return nil
}

// members lists "tensor:axis:kind", sorted.
func members(g *Group) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, fmt.Sprintf("%s:%d:%s", m.Tensor, m.Axis, m.Kind))
	}
	slices.Sort(out)
	return out
}

func wantMembers(t *testing.T, g *Group, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := members(g); !slices.Equal(got, want) {
		t.Errorf("group %s members\n got %v\nwant %v", g.Name, got, want)
	}
}

func wantFrozen(t *testing.T, g *Group, reason string) {
	t.Helper()
	if !g.Frozen || !strings.Contains(g.Reason, reason) {
		t.Errorf("group %s: frozen=%v reason %q, want frozen with %q", g.Name, g.Frozen, g.Reason, reason)
	}
}

func wantPrunable(t *testing.T, g *Group) {
	t.Helper()
	if g.Frozen {
		t.Errorf("group %s frozen: %s", g.Name, g.Reason)
	}
}

// pruneIdx removes the given indices of g and reindexes.
func pruneIdx(t *testing.T, a *Analysis, g *Group, remove ...int) {
	t.Helper()
	var keep []int
	for i := range g.Size {
		if !slices.Contains(remove, i) {
			keep = append(keep, i)
		}
	}
	if err := a.Apply(map[int][]int{g.ID: keep}); err != nil {
		t.Fatal(err)
	}
}

func wantDims(t *testing.T, m *graph.Model, name string, dims ...int64) {
	t.Helper()
	tp, ok := m.Graph.Constant(name)
	if !ok {
		t.Fatalf("no constant %s", name)
	}
	if !slices.Equal(tp.Dims, dims) {
		t.Errorf("%s dims %v, want %v", name, tp.Dims, dims)
	}
}

func wantInts(t *testing.T, m *graph.Model, name string, vals ...int64) {
	t.Helper()
	tp, ok := m.Graph.Constant(name)
	if !ok {
		t.Fatalf("no constant %s", name)
	}
	got, err := graph.Int64s(tp)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, vals) {
		t.Errorf("%s = %v, want %v", name, got, vals)
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
