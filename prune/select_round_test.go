package prune

import "testing"

// Kept counts round up to RoundTo for channel and MLP groups (to
// RoundNarrow below 8·RoundTo channels), never past the group; heads are
// whole units and keep their exact count.
func TestRoundKeepByKind(t *testing.T) {
	s := Settings{RoundTo: DefaultRoundTo, RoundNarrow: DefaultRoundNarrow, MaxLayerRatio: 0.8}
	cases := []struct {
		kind    string
		size, k int
		want    int
	}{
		{KindChannels, 256, 37, 48},
		{KindChannels, 64, 37, 40}, // narrower than 128: rounds to 8
		{KindMLP, 1536, 700, 704},
		{KindChannels, 12, 11, 12},
		{KindHeads, 12, 5, 5},
		{KindChannels, 256, 0, 16},
		{KindChannels, 64, 0, 8},
	}
	for _, c := range cases {
		if got := s.roundKeep(c.k, &Group{Kind: c.kind, Size: c.size}); got != c.want {
			t.Errorf("%s group of %d keeping %d: %d, want %d", c.kind, c.size, c.k, got, c.want)
		}
	}
	if got := (Settings{RoundTo: 1}).roundKeep(37, &Group{Kind: KindChannels, Size: 64}); got != 37 {
		t.Errorf("round-to 1 keeps %d of 37", got)
	}
}

// TestRoundNarrowGivesWay: the exact-count retry of the default rounding
// (RoundTo 1) keeps exact counts in narrow groups too.
func TestRoundNarrowGivesWay(t *testing.T) {
	s := Settings{RoundTo: 1, RoundNarrow: DefaultRoundNarrow, MaxLayerRatio: 0.8}
	if got := s.roundKeep(1, &Group{Kind: KindKVGroups, Size: 2}); got != 1 {
		t.Errorf("round-to 1 with RoundNarrow: a group of 2 keeping 1 keeps %d", got)
	}
}
