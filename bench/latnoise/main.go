//go:build linux

// Command latnoise measures how steady latency ratios are on a loaded
// machine: it times a dense and a pruned model run by run in turn
// (onnxruntime, one intra-op thread) and, for each repeat, prints the
// pruned/dense ratio by several estimators — medians of wall time, of
// the kernel thread's CPU time, the median of per-run CPU ratios, lower
// quantiles and minima of CPU time, and medians over the runs the
// scheduler did not preempt — next to the load average; then each
// estimator's mean and spread over the repeats. Used for
// docs/BENCHMARKS.md ("Measuring latency on a shared machine"). Linux
// only: preemption is read from per-thread getrusage (RUSAGE_THREAD).
//
//	go run ./bench/latnoise -batch 1,8 -runs 30 -repeats 5 dense.onnx pruned.onnx
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/ort"
)

type run struct {
	wall, cpu time.Duration
	preempted bool
}

func main() {
	batches := flag.String("batch", "1,8", "comma-separated batch sizes")
	warmup := flag.Int("warmup", 3, "untimed runs of each model per repeat")
	runs := flag.Int("runs", 30, "timed runs of each model per repeat")
	repeats := flag.Int("repeats", 5, "repeats per batch size")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: latnoise [-batch 1,8] [-runs N] [-repeats K] DENSE.onnx PRUNED.onnx")
		os.Exit(2)
	}
	if err := ort.Init(""); err != nil {
		fail(err)
	}
	var sess []*ort.Session
	for _, p := range flag.Args() {
		s, err := ort.NewSessionFromFile(p, ort.Options{Threads: 1})
		if err != nil {
			fail(err)
		}
		defer s.Close()
		sess = append(sess, s)
	}
	names := []string{"wall med", "cpu med", "cpu med-of-ratios", "cpu p25", "cpu min", "cpu med unpreempted"}
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || b < 1 {
			fail(fmt.Errorf("bad batch %q", f))
		}
		var timers []*ort.Timer
		for _, s := range sess {
			in, err := check.Synthesize(s.Inputs(), check.SynthOptions{Samples: b})
			if err != nil {
				fail(err)
			}
			t, err := s.NewTimer(in)
			if err != nil {
				fail(err)
			}
			defer t.Close()
			timers = append(timers, t)
		}
		all := make([][]float64, len(names))
		fmt.Printf("batch %d: %s | unpreempted runs dense/pruned | load\n", b, strings.Join(names, " | "))
		for range *repeats {
			rs := [2][]run{}
			for r := range *warmup + *runs {
				for i, t := range timers {
					x, err := timeRun(t)
					if err != nil {
						fail(err)
					}
					if r >= *warmup {
						rs[i] = append(rs[i], x)
					}
				}
			}
			est := estimates(rs)
			cells := []string{}
			for k, v := range est {
				all[k] = append(all[k], v)
				cells = append(cells, fmt.Sprintf("%.3f", v))
			}
			fmt.Printf("  %s | %d/%d | %s\n", strings.Join(cells, " | "), unpre(rs[0]), unpre(rs[1]), load())
		}
		for k, n := range names {
			m, sd, lo, hi := stats(all[k])
			fmt.Printf("  %-20s mean %.3f sd %.3f range %.3f–%.3f\n", n, m, sd, lo, hi)
		}
	}
}

// timeRun times one run on a locked thread and says whether the
// scheduler preempted the thread during it (an involuntary context
// switch, from getrusage's per-thread counters).
func timeRun(t *ort.Timer) (run, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var u0, u1 syscall.Rusage
	_ = syscall.Getrusage(1, &u0) // RUSAGE_THREAD
	w, c, ok, err := t.RunCPU(context.Background())
	_ = syscall.Getrusage(1, &u1)
	if !ok {
		c = w
	}
	return run{wall: w, cpu: c, preempted: u1.Nivcsw != u0.Nivcsw}, err
}

func estimates(rs [2][]run) []float64 {
	col := func(i int, f func(run) time.Duration, keep func(run) bool) []float64 {
		var out []float64
		for _, r := range rs[i] {
			if keep == nil || keep(r) {
				out = append(out, float64(f(r)))
			}
		}
		slices.Sort(out)
		return out
	}
	wall := func(r run) time.Duration { return r.wall }
	cpu := func(r run) time.Duration { return r.cpu }
	q := func(s []float64, p float64) float64 {
		if len(s) == 0 {
			return math.NaN()
		}
		return s[int(p*float64(len(s)-1)+0.5)]
	}
	ratio := func(f func(run) time.Duration, keep func(run) bool, p float64) float64 {
		return q(col(1, f, keep), p) / q(col(0, f, keep), p)
	}
	var pr []float64
	for i := range rs[0] {
		pr = append(pr, float64(rs[1][i].cpu)/float64(rs[0][i].cpu))
	}
	slices.Sort(pr)
	calm := func(r run) bool { return !r.preempted }
	return []float64{ratio(wall, nil, 0.5), ratio(cpu, nil, 0.5), q(pr, 0.5), ratio(cpu, nil, 0.25), ratio(cpu, nil, 0), ratio(cpu, calm, 0.5)}
}

func unpre(rs []run) int {
	n := 0
	for _, r := range rs {
		if !r.preempted {
			n++
		}
	}
	return n
}

func stats(v []float64) (mean, sd, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	n := 0
	for _, x := range v {
		if math.IsNaN(x) {
			continue
		}
		mean += x
		lo, hi = min(lo, x), max(hi, x)
		n++
	}
	mean /= float64(n)
	for _, x := range v {
		if !math.IsNaN(x) {
			sd += (x - mean) * (x - mean)
		}
	}
	return mean, math.Sqrt(sd / float64(max(n-1, 1))), lo, hi
}

func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "latnoise:", err)
	os.Exit(1)
}
