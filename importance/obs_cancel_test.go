package importance

import (
	"context"
	"errors"
	"testing"

	"github.com/pare-dev/pare/progress"
)

// A signal during the OBS inverses (seconds each on a wide layer) stops
// them between two layers: cancelled after the first, NewOBS returns
// the context's error and inverts no other.
func TestOBSStopsBetweenInverses(t *testing.T) {
	m, an, d := trainedDecoder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reported []int
	ctx = progress.With(ctx, func(stage string, done, total int) {
		if stage != "OBS inverses" {
			return
		}
		reported = append(reported, done)
		if done == 1 {
			cancel()
		}
	})
	o, err := NewOBS(ctx, m, an, d, 0.01)
	if !errors.Is(err, context.Canceled) || o != nil {
		t.Fatalf("NewOBS cancelled during its inverses: %v, %v; want context.Canceled", o, err)
	}
	if len(reported) != 2 || reported[1] != 1 {
		t.Errorf("inverse reports %v: want 0 and 1, then the stop", reported)
	}
}
