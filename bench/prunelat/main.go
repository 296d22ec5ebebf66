// Command prunelat times a dense model and pruned variants of it side by
// side in onnxruntime (one intra-op thread), runs interleaved model by
// model, and prints each variant's MACs ratio and its latency ratio to
// the dense model per batch size: the ratio of median wall times and the
// ratio of median CPU times of the thread that runs the kernels. On a
// shared machine the CPU-time ratio leaves out waits for a core; both are
// printed. -cpu min takes the least CPU time of the runs instead of the
// median (docs/BENCHMARKS.md, "Measuring latency on a shared machine"). Used by bench/prune-latency.sh (docs/BENCHMARKS.md, "Pruned
// latency").
//
//	go run ./bench/prunelat -batch 1,8 -runs 10 dense.onnx NAME=pruned.onnx ...
//
// -md prints one markdown row per variant with the goal latency ratio ≤
// MACs ratio / 0.8.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
)

type model struct {
	name, path string
	macs       int64
	sess       *ort.Session
}

func main() {
	batches := flag.String("batch", "1,8", "comma-separated batch sizes")
	warmup := flag.Int("warmup", 2, "untimed runs of each model per batch")
	runs := flag.Int("runs", 10, "timed runs of each model per batch")
	cpuStat := flag.String("cpu", "median", "CPU time statistic per model: median or min (the least of the runs, steadier on a loaded machine; package latency's measure)")
	md := flag.Bool("md", false, "markdown rows (model, variant, MACs ratio, per batch wall and CPU ratios, goal)")
	label := flag.String("label", "", "model name for -md rows (default: the dense file's base name)")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: prunelat [-batch 1,8] [-runs N] DENSE.onnx [NAME=]PRUNED.onnx...")
		os.Exit(2)
	}
	if *cpuStat != "median" && *cpuStat != "min" {
		fail(fmt.Errorf("-cpu %q: want median or min", *cpuStat))
	}
	var bs []int64
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || b < 1 {
			fail(fmt.Errorf("bad batch %q", f))
		}
		bs = append(bs, b)
	}
	var ms []*model
	for i, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			name, path = strings.TrimSuffix(filepath.Base(arg), ".onnx"), arg
		}
		if i == 0 {
			name = "dense"
		}
		f, err := graph.MeasureFile(path)
		if err != nil {
			fail(err)
		}
		s, err := ort.NewSessionFromFile(path, ort.Options{Threads: 1})
		if err != nil {
			fail(err)
		}
		defer s.Close()
		m := &model{name: name, path: path, sess: s}
		if f.MACs != nil {
			m.macs = *f.MACs
		}
		ms = append(ms, m)
	}
	if *label == "" {
		*label = strings.TrimSuffix(filepath.Base(ms[0].path), ".onnx")
	}
	// wall[b][m], cpu[b][m]: medians.
	wall := make([][]time.Duration, len(bs))
	cpu := make([][]time.Duration, len(bs))
	for bi, b := range bs {
		var err error
		wall[bi], cpu[bi], err = timeBatch(ms, b, *warmup, *runs, *cpuStat == "min")
		if err != nil {
			fail(err)
		}
	}
	if !*md {
		fmt.Printf("%-12s %8s", "variant", "MACs×")
		for _, b := range bs {
			fmt.Printf("  b%-3d wall× cpu×   ", b)
		}
		fmt.Println()
	}
	for i, m := range ms[1:] {
		i++
		macs := float64(m.macs) / float64(ms[0].macs)
		if *md {
			met := true
			cells := []string{}
			for bi := range bs {
				w := ratio(wall[bi][i], wall[bi][0])
				c := ratio(cpu[bi][i], cpu[bi][0])
				met = met && c <= macs/0.8
				cells = append(cells, fmt.Sprintf("%.2f", w), fmt.Sprintf("%.2f", c))
			}
			verdict := "met"
			if !met {
				verdict = "**missed**"
			}
			fmt.Printf("| %s | %s | %.3f | %s | %.3f %s |\n", *label, m.name, macs, strings.Join(cells, " | "), macs/0.8, verdict)
			continue
		}
		fmt.Printf("%-12s %8.3f", m.name, macs)
		for bi := range bs {
			fmt.Printf("  %10.3f %6.3f   ", ratio(wall[bi][i], wall[bi][0]), ratio(cpu[bi][i], cpu[bi][0]))
		}
		fmt.Println()
	}
	if !*md {
		for bi, b := range bs {
			fmt.Printf("dense b%d: wall %v (median), cpu %v (%s) of %d runs\n", b, wall[bi][0].Round(time.Microsecond), cpu[bi][0].Round(time.Microsecond), *cpuStat, *runs)
		}
	}
}

// timeBatch runs every model warmup+runs times at batch b, one run of
// each in turn, and returns the median wall and the median (least with
// least) CPU times per model.
func timeBatch(ms []*model, b int64, warmup, runs int, least bool) ([]time.Duration, []time.Duration, error) {
	timers := make([]*ort.Timer, len(ms))
	for i, m := range ms {
		in, err := check.Synthesize(m.sess.Inputs(), check.SynthOptions{Samples: b})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.path, err)
		}
		if timers[i], err = m.sess.NewTimer(in); err != nil {
			return nil, nil, err
		}
		defer timers[i].Close()
	}
	walls := make([][]time.Duration, len(ms))
	cpus := make([][]time.Duration, len(ms))
	for r := range warmup + runs {
		for i, t := range timers {
			w, c, ok, err := t.RunCPU(context.Background())
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				c = w
			}
			if r >= warmup {
				walls[i] = append(walls[i], w)
				cpus[i] = append(cpus[i], c)
			}
		}
	}
	wall := make([]time.Duration, len(ms))
	cpu := make([]time.Duration, len(ms))
	for i := range ms {
		wall[i], cpu[i] = median(walls[i]), median(cpus[i])
		if least {
			cpu[i] = slices.Min(cpus[i])
		}
	}
	return wall, cpu, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "prunelat:", err)
	os.Exit(1)
}
