package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph"
)

// Shape inference and counting on the smallest and the largest fixture
// graphs (by node count).
func BenchmarkInferShapes(b *testing.B) {
	for _, name := range []string{"resnet18_w16_op17", "swin_nano_op13"} {
		b.Run(name, func(b *testing.B) {
			var m *graph.Model
			for _, f := range loadManifest(b) {
				if f.Name == name {
					m = loadFixture(b, f)
				}
			}
			if m == nil {
				b.Fatalf("fixture %s not in the manifest", name)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := graph.Count(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
