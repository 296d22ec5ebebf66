package prune

import "hash/fnv"

// Segments. Rounding a group's kept count is not enough when its
// channels reach different tensors in different combinations: DenseNet's
// block is one group (the stem's channels and every layer's growth
// channels are concatenated, and each later layer reads a prefix of the
// concatenation), so a multiple of 8 for the group leaves odd widths in
// every Concat and convolution (52 + 21 + 25 + ... channels). A segment
// is a set of a group's indices that every tensor holds whole or not at
// all; rounding each segment's kept count makes every tensor's width
// from the group a multiple too (before, pruned DenseNet-121 fell out of
// onnxruntime's blocked NCHWc kernels and ran no faster than dense).

// buildSegments gives every index of every group a segment number: two
// indices share a segment when the same tensors (value and axis) carry
// them.
func (a *Analysis) buildSegments() {
	for _, g := range a.Groups {
		sig := make([]uint64, g.Size)
		stamp := make([]int, g.Size)
		for d, ref := range g.Dims {
			h := fnv.New64a()
			h.Write([]byte(ref.Value))
			h.Write([]byte{byte(ref.Axis), byte(ref.Axis >> 8)})
			key := h.Sum64()
			for _, e := range a.labels[ref.Value][ref.Axis] {
				if e < 0 {
					continue
				}
				u, ok := a.unitOf[a.uf.find(e)]
				if !ok || u.group != g.ID || stamp[u.index] == d+1 {
					continue
				}
				stamp[u.index] = d + 1
				sig[u.index] ^= key
			}
		}
		ids := map[uint64]int{}
		g.segment = make([]int, g.Size)
		for i, s := range sig {
			id, ok := ids[s]
			if !ok {
				id = len(ids)
				ids[s] = id
			}
			g.segment[i] = id
		}
		g.segments = len(ids)
	}
}

// Segments returns the number of segments of g and the segment of each
// index.
func (g *Group) Segments() (int, []int) { return g.segments, g.segment }

// segmented reports whether g's kept counts round per segment: channel
// groups of more than one segment. Other kinds (MLP widths, head
// dimensions, embeddings) round as a whole: their segments are the
// heads or the Q/K/V slices of one width, which rounding each to
// RoundTo would keep whole.
func (g *Group) segmented() bool { return g.segments > 1 && g.Kind == KindChannels }
