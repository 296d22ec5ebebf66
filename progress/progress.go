// Package progress lets long library work say how far it has got
// without printing anything itself.
//
// A command puts a Func in the context it hands to a library; the
// library calls Report at each unit of work (a calibration batch, a
// quantized layer, a reconstructed layer). With no Func in the context
// Report does nothing, so libraries report unconditionally and only a
// terminal user sees a bar.
package progress

import "context"

// Func receives a stage's progress: done of total units (total ≤ 0 when
// the amount of work is not known). It may be called from several
// goroutines at once.
type Func func(stage string, done, total int)

type key struct{}

// With returns ctx carrying f.
func With(ctx context.Context, f Func) context.Context {
	if f == nil {
		return ctx
	}
	return context.WithValue(ctx, key{}, f)
}

// Report tells the Func in ctx, if any, that stage has done of total
// units.
func Report(ctx context.Context, stage string, done, total int) {
	if f, ok := ctx.Value(key{}).(Func); ok && f != nil {
		f(stage, done, total)
	}
}

// Without returns ctx with its Func hidden: work run under it reports
// nothing (a pipeline reports its runs, not each run's inner stages).
func Without(ctx context.Context) context.Context {
	return context.WithValue(ctx, key{}, Func(nil))
}
