package graph_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
)

// Shape inference and counting never panic, whatever the model says.
func FuzzInferShapes(f *testing.F) {
	seeds := []func(b *build.Builder) string{
		dynamicReshape,
		sliceCase([]int64{-1, 20, 30}, []int64{2, -10}, []int64{10, 1000}, []int64{1, 2}, nil),
		withInts("Reshape", []int64{-1, 16, 64}, []int64{0, 0, 4, -1}),
		withInts("Expand", []int64{3, 1}, []int64{2, 1, 6}),
		withInts("Pad", []int64{-1, 3, 8, 8}, []int64{0, 0, 1, 2, 0, 0, 3, 4}),
		binary("Einsum", []int64{-1, 4, 32, 16}, []int64{-1, 4, 8, 16}, build.String("equation", "bhqd,bhkd->bhqk")),
		binary("Concat", []int64{-1, 3, 8}, []int64{-1, 5, 8}, build.Int("axis", 1)),
	}
	for _, seed := range seeds {
		b := build.New(17)
		declareOutput(b, seed(b))
		data, err := proto.Marshal(b.Model)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := graph.Parse(data)
		if err != nil {
			return
		}
		if _, err := graph.InferShapes(m); err != nil {
			return
		}
		if _, err := graph.Summarize(m); err != nil {
			t.Fatalf("Summarize failed after InferShapes succeeded: %v", err)
		}
	})
}
