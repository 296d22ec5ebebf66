package recovery

import (
	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
)

// FitMACs returns the multiply-accumulates one sample costs in one step
// of the block fit of m toward ref (FitBlocks), counted at the size of
// src's samples: every block's own nodes, and with the output term
// (BlockFitConfig.Output > 0) every node after each inner block too,
// which that block's loss runs through. The forward pass stands for the
// step: what the default's budget compares is one fit against another.
// With output, a model output the term cannot match (no known last
// axis) is an error, before any fit runs.
func FitMACs(m, ref *graph.Model, src *calib.Source, output bool) (int64, error) {
	shapes, err := sampleShapes(m, src)
	if err != nil {
		return 0, err
	}
	input, err := dataInput(m, src)
	if err != nil {
		return 0, err
	}
	if output {
		if _, _, err := outputClasses(shapes, ref.Graph.Outputs[0].Name); err != nil {
			return 0, err
		}
	}
	refLayers := layersByName(ref)
	blocks, _, _ := cutBlocks(m.Graph, shapes, input, src.Filled(), func(n *graph.Node) bool { return refLayers[n.Name()] != nil })
	nodeMACs := map[*graph.Node]int64{}
	counts := graph.CountWithShapes(m, shapes).Nodes
	for i, n := range m.Graph.Nodes {
		nodeMACs[n] = counts[i].MACs
	}
	var total int64
	for i, b := range blocks {
		nodes := b.nodes
		if output && i < len(blocks)-1 {
			nodes = b.through(m.Graph)
		}
		for _, n := range nodes {
			total += nodeMACs[n]
		}
	}
	return total, nil
}
