package graph

// inferRNN shapes LSTM (4 gates), GRU (3) and RNN (1). With layout 0,
// X is [seq, batch, input], Y [seq, dirs, batch, hidden] and the final
// states [dirs, batch, hidden]; layout 1 puts batch first:
// X [batch, seq, input], Y [batch, seq, dirs, hidden], states
// [batch, dirs, hidden].
func inferRNN(gates int64) shapeRule {
	return func(c *nodeCtx) error {
		x := c.in(0)
		dirs := int64(1)
		if c.n.StringAttr("direction", "forward") == "bidirectional" {
			dirs = 2
		}
		hidden := Dim{}
		if h := c.n.IntAttr("hidden_size", 0); h > 0 {
			hidden = DimOf(h)
		} else if r := c.in(2); r.Ranked && len(r.Dims) == 3 {
			hidden = r.Dims[2]
		}
		if w := c.in(1); w.Ranked {
			if len(w.Dims) != 3 {
				return mismatch("W has rank %d, want 3", len(w.Dims))
			}
			want := mulDim(hidden, DimOf(gates))
			if w.Dims[1].IsKnown() && want.IsKnown() && w.Dims[1] != want {
				return mismatch("W has %v rows, want %d·hidden = %v", w.Dims[1], gates, want)
			}
		}
		seq, batch := Dim{}, Dim{}
		layout := c.n.IntAttr("layout", 0)
		if x.Ranked {
			if len(x.Dims) != 3 {
				return mismatch("X has rank %d, want 3", len(x.Dims))
			}
			seq, batch = x.Dims[0], x.Dims[1]
			if layout == 1 {
				seq, batch = batch, seq
			}
		}
		d := DimOf(dirs)
		if layout == 1 {
			c.out(0, ShapeOf(x.Elem, batch, seq, d, hidden))
			c.out(1, ShapeOf(x.Elem, batch, d, hidden))
			c.out(2, ShapeOf(x.Elem, batch, d, hidden))
			return nil
		}
		c.out(0, ShapeOf(x.Elem, seq, d, batch, hidden))
		c.out(1, ShapeOf(x.Elem, d, batch, hidden))
		c.out(2, ShapeOf(x.Elem, d, batch, hidden))
		return nil
	}
}
