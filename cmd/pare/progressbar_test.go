package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Under go test stderr is a pipe or a file, as in CI and in a pipeline:
// no bar is set up and the context comes back unchanged.
func TestNoProgressBarOffTerminal(t *testing.T) {
	ctx := context.Background()
	for _, jsonOut := range []bool{false, true} {
		got, done := withProgressBar(ctx, jsonOut)
		done()
		if got != ctx {
			t.Errorf("json=%v: a progress reporter was installed though stderr is not a terminal", jsonOut)
		}
	}
}

// A bar per stage: a new stage replaces the previous bar, and finish
// clears the line.
func TestStageBarsDrawEachStage(t *testing.T) {
	var buf bytes.Buffer
	b := &stageBars{w: &buf}
	for i := range 4 {
		b.report("calibration", i+1, 4)
	}
	b.report("gptq layers", 1, 10)
	b.finish()
	out := buf.String()
	for _, want := range []string{"calibration", "gptq layers", "1/10"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q: %q", want, out)
		}
	}
	if b.bar != nil {
		t.Error("finish left a bar open")
	}
}
