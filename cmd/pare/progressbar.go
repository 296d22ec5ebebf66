package main

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pare-dev/pare/progress"
)

// withProgressBar returns ctx carrying a progress.Func that draws a bar
// per stage on stderr, and a func that clears the last bar. Nothing is
// drawn when stderr is not a terminal or the output is JSON, so pipes,
// logs and CI see exactly the command's output.
func withProgressBar(ctx context.Context, jsonOut bool) (context.Context, func()) {
	w, ok := terminal(os.Stderr)
	if !ok || jsonOut {
		return ctx, func() {}
	}
	b := &stageBars{w: w}
	return progress.With(ctx, b.report), b.finish
}

// stageBars draws one bar at a time: a new stage closes the previous
// stage's bar. Reports may come from several goroutines.
type stageBars struct {
	w     io.Writer
	mu    sync.Mutex
	stage string
	bar   *progressbar.ProgressBar
}

func (s *stageBars) report(stage string, done, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stage != s.stage || s.bar == nil {
		s.clear()
		max := total
		if max <= 0 {
			max = -1 // a spinner: the amount of work is unknown
		}
		s.stage = stage
		s.bar = progressbar.NewOptions(max,
			progressbar.OptionSetWriter(s.w),
			progressbar.OptionSetDescription(stage),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetWidth(30),
		)
	}
	_ = s.bar.Set(done)
}

func (s *stageBars) clear() {
	if s.bar != nil {
		_ = s.bar.Clear()
		s.bar = nil
	}
}

func (s *stageBars) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
}
