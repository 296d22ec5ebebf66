// Command analysis times pare's pruning analysis (prune.Analyze: shape
// inference, channel groups, covers, kinds) against an unchanged load and
// save of the same model, as recorded in docs/BENCHMARKS.md:
//
//	go run ./bench/analysis [-runs 5] model.onnx
//
// Each run loads the model, saves it to a temporary file, and analyses a
// fresh load; the medians and the ratio analysis / (load + save) are
// printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

func main() {
	runs := flag.Int("runs", 5, "runs (medians are reported)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: analysis [-runs N] model.onnx")
		os.Exit(2)
	}
	path := flag.Arg(0)
	dir, err := os.MkdirTemp("", "pare-analysis-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	var load, save, analyze []time.Duration
	groups := 0
	for range *runs {
		t0 := time.Now()
		m, err := graph.Load(path)
		if err != nil {
			fail(err)
		}
		t1 := time.Now()
		if err := m.Save(filepath.Join(dir, "out.onnx"), graph.SaveOptions{}); err != nil {
			fail(err)
		}
		t2 := time.Now()
		load, save = append(load, t1.Sub(t0)), append(save, t2.Sub(t1))
		m, err = graph.Load(path)
		if err != nil {
			fail(err)
		}
		t3 := time.Now()
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			fail(err)
		}
		analyze = append(analyze, time.Since(t3))
		groups = len(an.Groups)
	}
	l, s, a := median(load), median(save), median(analyze)
	fmt.Printf("model %s, %d runs, %d groups\n", filepath.Base(path), *runs, groups)
	fmt.Printf("load %v, save %v, load+save %v, analysis %v, analysis / (load+save) = %.2f\n",
		l.Round(time.Millisecond), s.Round(time.Millisecond), (l + s).Round(time.Millisecond),
		a.Round(time.Millisecond), float64(a)/float64(l+s))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "analysis:", err)
	os.Exit(1)
}
