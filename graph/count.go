package graph

// Counts are a model's parameters and multiply-accumulates, counted as
// docs/COUNTING.md describes.
type Counts struct {
	// Params is the number of parameter elements, each tensor counted
	// once however many nodes read it.
	Params int64
	// ParamTensors is the number of tensors Params counts.
	ParamTensors int
	// MACs is the sum of the nodes' MACs, with every symbolic dimension
	// (batch, sequence) taken as 1.
	MACs int64
	// Nodes has one entry per node, in graph order.
	Nodes []NodeCount
	// Uncounted names the nodes whose MACs could not be computed because
	// a shape they depend on is unknown; MACs leaves them out.
	Uncounted []string
}

// NodeCount is one node's share.
type NodeCount struct {
	Name string
	Op   string
	// Params counts the parameter elements the node reads (a tensor
	// shared by several nodes is counted in each of them here, once in
	// Counts.Params).
	Params int64
	MACs   int64
	// Counted is false when MACs is unknown (see Counts.Uncounted).
	Counted bool
}

// Count infers shapes and counts m's parameters and MACs.
func Count(m *Model) (Counts, error) {
	s, err := InferShapes(m)
	if err != nil {
		return Counts{}, err
	}
	return CountWithShapes(m, s), nil
}

// CountWithShapes counts with shapes already inferred.
func CountWithShapes(m *Model, s *Shapes) Counts {
	g := m.Graph
	params := paramTensors(g)
	var c Counts
	for _, p := range params {
		c.Params += p
		c.ParamTensors++
	}
	for _, n := range g.Nodes {
		nc := NodeCount{Name: n.Name(), Op: n.Op(), Counted: true}
		seen := map[string]bool{}
		for _, in := range n.Proto.Input {
			if p, ok := params[in]; ok && !seen[in] {
				seen[in] = true
				nc.Params += p
			}
		}
		macs, ok := nodeMACs(n, s)
		if ok {
			nc.MACs = macs
			c.MACs = satAdd(c.MACs, macs)
		} else {
			nc.Counted = false
			c.Uncounted = append(c.Uncounted, n.Name())
		}
		c.Nodes = append(c.Nodes, nc)
	}
	return c
}

// satMul multiplies non-negative counts, saturating instead of
// overflowing.
func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxCount/b {
		return maxCount
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > maxCount-b {
		return maxCount
	}
	return a + b
}

const maxCount = 1<<63 - 1
