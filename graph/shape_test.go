package graph_test

import (
	"errors"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

const (
	f32 = onnx.TensorProto_FLOAT
	i64 = onnx.TensorProto_INT64
)

// shapeCase builds a small graph and names the value whose inferred
// shape (TensorShape.String) is checked. Builder inputs with a -1 dim get
// the symbol "d<position>".
type shapeCase struct {
	name    string
	opset   int64
	build   func(b *build.Builder) string
	want    string
	wantErr bool
}

func runShapeCases(t *testing.T, cases []shapeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opset := c.opset
			if opset == 0 {
				opset = 17
			}
			b := build.New(opset)
			out := c.build(b)
			declareOutput(b, out)
			m, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			s, err := graph.InferShapes(m)
			if c.wantErr {
				if !errors.Is(err, graph.ErrShapeMismatch) || !errors.Is(err, graph.ErrInvalidModel) {
					t.Fatalf("err = %v, want ErrShapeMismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Of(out)
			if !ok {
				t.Fatalf("no shape for %s", out)
			}
			if got.String() != c.want {
				t.Errorf("%s = %v, want %s", out, got, c.want)
			}
		})
	}
}

func zeros(n int) []float32 { return make([]float32, n) }

// declareOutput makes name a graph output without declaring its type.
func declareOutput(b *build.Builder, name string) {
	b.Model.Graph.Output = append(b.Model.Graph.Output, &onnx.ValueInfoProto{Name: &name})
}

func TestInferShapesUnknownOpIsNotAnError(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, -1, 4)
	y := b.Node("FancyOp", []string{x})
	z := b.Node("Relu", []string{y})
	declareOutput(b, z)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := graph.InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Of(y); ok {
		t.Errorf("unknown op output has shape %v", got)
	}
	if got, _ := s.Of(z); got.Ranked {
		t.Errorf("Relu of unknown = %v, want unranked", got)
	}
}

// value_info fills what inference cannot know and, when it disagrees,
// is recorded as a conflict and trusted.
func TestInferShapesValueInfo(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, -1, 4)
	y := b.Node("FancyOp", []string{x})
	z := b.Node("Relu", []string{y})
	r := b.Node("Relu", []string{x})
	b.Output(z, f32, -1, 8)
	gp := b.Model.Graph
	gp.ValueInfo = append(gp.ValueInfo, build.ValueInfo(y, f32, 2, 8), build.ValueInfo(r, f32, -1, 5))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := graph.InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{y: "float[2,8]", z: "float[2,8]", r: "float[d0,5]"} {
		if got, _ := s.Of(name); got.String() != want {
			t.Errorf("%s = %v, want %s", name, got, want)
		}
	}
	if len(s.Conflicts) != 1 || s.Conflicts[0].Value != r || s.Conflicts[0].Inferred.String() != "float[d0,4]" {
		t.Errorf("conflicts = %v, want one for %s", s.Conflicts, r)
	}
	s, err = graph.InferShapesWith(m, graph.InferOptions{IgnoreValueInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Of(y); ok {
		t.Error("IgnoreValueInfo still used value_info")
	}
	if got, _ := s.Of(r); got.String() != "float[d0,4]" {
		t.Errorf("%s = %v without value_info", r, got)
	}
}

func TestDimArithmetic(t *testing.T) {
	batch := graph.SymDim("batch")
	cases := []struct {
		d    graph.Dim
		want string
	}{
		{graph.DimOf(7), "7"},
		{batch, "batch"},
		{graph.SymDim("seq*batch"), "batch*seq"},
		{graph.SymDim(""), "?"},
		{graph.Dim{}, "?"},
	}
	for _, c := range cases {
		if c.d.String() != c.want {
			t.Errorf("%#v prints %q, want %q", c.d, c.d.String(), c.want)
		}
	}
	if v, ok := graph.SymDim("a*b").Eval(3); !ok || v != 9 {
		t.Errorf("a*b at 3 = %d, %v", v, ok)
	}
	if _, ok := (graph.Dim{}).Eval(1); ok {
		t.Error("unknown dim evaluated")
	}
}
