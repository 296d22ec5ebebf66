package ort

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

func TestTime(t *testing.T) {
	s := openSession(t, orttest.MLP(), Options{})
	lat, err := s.Time(ctx, map[string]tensor.Dense{"x": inputX(8)}, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	if lat.Runs != 20 || lat.Warmup != 3 || lat.Threads != 1 {
		t.Errorf("latency %+v", lat)
	}
	if !(lat.Min > 0 && lat.Min <= lat.Median && lat.Median <= lat.P90 && lat.P90 <= lat.Max && lat.Mean > 0) {
		t.Errorf("inconsistent latency %+v", lat)
	}
	if _, err := s.Time(ctx, map[string]tensor.Dense{"x": inputX(8)}, 0, 0); err == nil {
		t.Error("0 runs accepted")
	}
	if _, err := s.Time(ctx, map[string]tensor.Dense{"y": inputX(8)}, 0, 1); !errors.Is(err, ErrInput) {
		t.Errorf("wrong input: %v", err)
	}
}

func TestSummarise(t *testing.T) {
	// 1..10 ms: median 5.5, nearest-rank p90 is the 9th value, mean 5.5.
	var ts []time.Duration
	for i := 10; i >= 1; i-- {
		ts = append(ts, time.Duration(i)*time.Millisecond)
	}
	l := Summarise(ts, 4, 2)
	if l.Median != 5500*time.Microsecond || l.P90 != 9*time.Millisecond || l.Mean != 5500*time.Microsecond ||
		l.Min != time.Millisecond || l.Max != 10*time.Millisecond || l.Threads != 4 || l.Warmup != 2 || l.Runs != 10 {
		t.Errorf("%+v", l)
	}
	one := Summarise([]time.Duration{7}, 1, 0)
	if one.Median != 7 || one.P90 != 7 {
		t.Errorf("%+v", one)
	}
}

func TestTimerInterleaved(t *testing.T) {
	a := openSession(t, orttest.MLP(), Options{})
	b := openSession(t, orttest.Perturb(orttest.MLP(), "W1", 0.5), Options{})
	feed := map[string]tensor.Dense{"x": inputX(4)}
	ta, err := a.NewTimer(feed)
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	tb, err := b.NewTimer(feed)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for range 5 {
		for _, tm := range []*Timer{ta, tb} {
			if d, err := tm.Run(ctx); err != nil || d <= 0 {
				t.Fatalf("run: %v, %v", d, err)
			}
		}
	}
	if _, err := a.NewTimer(map[string]tensor.Dense{}); !errors.Is(err, ErrInput) {
		t.Errorf("missing input: %v", err)
	}
	if l := Summarise(nil, 1, 0); l.Runs != 0 {
		t.Errorf("empty summary %+v", l)
	}
}

// TestRunCPU: on a real model (the resnet18_w16 fixture, one intra-op
// thread), each run's thread CPU time is readable on Linux, positive,
// and no more than the run's wall time (one thread cannot use more CPU
// than time passes; 1 ms allows for the clock reads around the run).
func TestRunCPU(t *testing.T) {
	s, err := NewSessionFromFile(filepath.Join("..", "fixtures", "models", "resnet18_w16_op13.onnx"), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, err := tensor.Zeros(tensor.Float32, []int64{2, 3, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := s.NewTimer(map[string]tensor.Dense{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	for range 5 {
		wall, cpu, ok, err := tm.RunCPU(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS == "linux" && !ok {
			t.Fatal("thread CPU time not readable on Linux")
		}
		if ok && !(cpu > 0 && cpu <= wall+time.Millisecond) {
			t.Errorf("run: wall %v, thread CPU %v", wall, cpu)
		}
	}
}
