package grad

import "testing"

// TestChunkRows: the decoder's batches of 32 windows of 64 tokens run
// in chunks of 4, images in chunks of 8, a batch of one whole.
func TestChunkRows(t *testing.T) {
	for _, c := range []struct {
		batch  int
		shape  []int64
		tokens bool
		want   int
	}{
		{32, []int64{32, 64}, true, 4},
		{32, []int64{32, 1, 28, 28}, false, 8},
		{1, []int64{1, 64}, true, 1},
		{30, []int64{30, 32}, true, 6},
		{7, []int64{7, 1024}, true, 1},
	} {
		if got := ChunkRows(c.batch, c.shape, c.tokens); got != c.want {
			t.Errorf("ChunkRows(%d, %v, %v) = %d, want %d", c.batch, c.shape, c.tokens, got, c.want)
		}
	}
}
