package graph_test

import (
	"fmt"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// Every fixture's parameter count equals the manifest's count of float
// initializer elements, and every node's MACs are known.
func TestCountFixtures(t *testing.T) {
	for _, f := range loadManifest(t) {
		t.Run(f.Name, func(t *testing.T) {
			m := loadFixture(t, f)
			if len(m.SymbolicSizes()) > 0 {
				// With symbolic image sizes the Convs cannot be counted.
				c, err := graph.Count(m)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Uncounted) == 0 {
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
			// Shapes that inference cannot complete leave MACs uncounted:
			// the same fixtures as incompleteShapes, the same capability.
			var errs []string
			if len(c.Uncounted) > 0 {
				errs = append(errs, fmt.Sprintf("uncounted nodes: %v", c.Uncounted))
			}
			if c.MACs <= 0 {
				errs = append(errs, fmt.Sprintf("MACs = %d", c.MACs))
			}
			expectFixture(t, f.Name, incompleteShapes, errs)
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
