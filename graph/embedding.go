package graph

// EmbeddingRows is the number of rows of the constant table that the
// value input (token ids, directly or through a Cast) indexes with a
// Gather, or 0 when no such table is found.
func (g *Graph) EmbeddingRows(input string) int64 {
	for _, c := range g.Consumers(input) {
		switch {
		case c.Op() == "Cast":
			if rows := g.EmbeddingRows(c.Output(0)); rows > 0 {
				return rows
			}
		case c.Op() == "Gather" && c.Input(1) == input:
			if t, ok := g.Constant(c.Input(0)); ok && len(t.Dims) > 0 {
				return t.Dims[0]
			}
		}
	}
	return 0
}
