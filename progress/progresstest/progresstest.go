// Package progresstest stops work at a chosen unit of one of its
// stages, for tests of how soon a cancelled context takes effect.
package progresstest

import (
	"context"

	"github.com/pare-dev/pare/progress"
)

// CancelAt returns a context that is cancelled when stage reports unit
// as done, and the units stage reported, in order. Call cancel when
// the test ends.
func CancelAt(stage string, unit int) (ctx context.Context, cancel context.CancelFunc, reported *[]int) {
	ctx, cancel = context.WithCancel(context.Background())
	reported = new([]int)
	ctx = progress.With(ctx, func(s string, done, _ int) {
		if s != stage {
			return
		}
		*reported = append(*reported, done)
		if done == unit {
			cancel()
		}
	})
	return ctx, cancel, reported
}
