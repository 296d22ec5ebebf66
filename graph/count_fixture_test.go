package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
)

// Every fixture's parameter count equals the manifest's count of float
// initializer elements, and every node's MACs are known.
func TestCountFixtures(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		t.Run(f.Name, func(t *testing.T) {
			m := loadFixture(t, f)
			if len(m.SymbolicSizes()) > 0 {
				// With symbolic image sizes the Convs cannot be counted; a
				// decoder's symbolic cache length counts as one, as its
				// sequence does.
				c, err := graph.Count(m)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Uncounted) == 0 && f.Kind != "decoder" {
					t.Errorf("symbolic sizes %v, yet every node counted", m.SymbolicSizes())
				}
				fixRefSizes(t, f, m)
			}
			c, err := graph.Count(m)
			if err != nil {
				t.Fatal(err)
			}
			if c.Params != f.OnnxParamElems {
				t.Errorf("params = %d, manifest says %d", c.Params, f.OnnxParamElems)
			}
			if len(c.Uncounted) > 0 {
				t.Errorf("uncounted nodes: %v", c.Uncounted)
			}
			if c.MACs <= 0 {
				t.Errorf("MACs = %d", c.MACs)
			}
			var sum int64
			for _, n := range c.Nodes {
				sum += n.MACs
			}
			if sum != c.MACs {
				t.Errorf("node MACs sum to %d, total %d", sum, c.MACs)
			}
			t.Logf("params %d, MACs %d", c.Params, c.MACs)
		})
	}
}
