// Command ortprofile runs models in onnxruntime with its profiler on and
// prints where the time goes, node by node: the kernel onnxruntime chose
// after its graph optimisations (Conv, FusedConv, NchwcConv, ReorderInput,
// ...), the input shapes, and the median time per run. Used to find why
// a pruned model is slower than its MACs predict (docs/BENCHMARKS.md,
// "Pruned latency").
//
//	go run ./bench/ortprofile -batch 1 -runs 20 dense.onnx pruned.onnx
//
// One intra-op thread. -top N lists the N slowest nodes of each model;
// the op table sums every model's node times per kernel.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/ort"
)

func main() {
	batch := flag.Int64("batch", 1, "batch size of the synthetic inputs")
	warmup := flag.Int("warmup", 3, "untimed runs")
	runs := flag.Int("runs", 20, "profiled runs")
	top := flag.Int("top", 15, "slowest nodes listed per model")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ortprofile [-batch N] [-runs N] [-top N] MODEL...")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "ortprofile")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	var all []profile
	for i, path := range flag.Args() {
		p, err := profileModel(path, filepath.Join(dir, fmt.Sprint(i)), *batch, *warmup, *runs)
		if err != nil {
			fail(err)
		}
		all = append(all, p)
	}
	printOps(all)
	for _, p := range all {
		printTop(p, *top)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ortprofile:", err)
	os.Exit(1)
}

// nodeTime is one node's kernel and median time per run.
type nodeTime struct {
	Name, Op, Provider string
	Shapes             string
	Us                 float64
}

type profile struct {
	Path  string
	Nodes []nodeTime
	Total float64 // µs per run, sum of node medians
}

// event is one entry of onnxruntime's profile JSON.
type event struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Dur  int64  `json:"dur"`
	Args struct {
		OpName   string               `json:"op_name"`
		Provider string               `json:"provider"`
		Inputs   []map[string][]int64 `json:"input_type_shape"`
	} `json:"args"`
}

func profileModel(path, prefix string, batch int64, warmup, runs int) (profile, error) {
	// Warm-up runs go to a session without the profiler, so the profile
	// holds timed runs only.
	run := func(opts ort.Options, n int) error {
		s, err := ort.NewSessionFromFile(path, opts)
		if err != nil {
			return err
		}
		defer s.Close()
		in, err := check.Synthesize(s.Inputs(), check.SynthOptions{Samples: batch})
		if err != nil {
			return err
		}
		tm, err := s.NewTimer(in)
		if err != nil {
			return err
		}
		defer tm.Close()
		for range n {
			if _, err := tm.Run(context.Background()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := run(ort.Options{}, warmup); err != nil {
		return profile{}, err
	}
	if err := run(ort.Options{ProfilePrefix: prefix}, runs); err != nil {
		return profile{}, err
	}
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 1 {
		return profile{}, fmt.Errorf("%s: %d profile files, want one", path, len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return profile{}, err
	}
	var evs []event
	if err := json.Unmarshal(data, &evs); err != nil {
		return profile{}, fmt.Errorf("%s: profile: %w", files[0], err)
	}
	times := map[string][]float64{}
	info := map[string]nodeTime{}
	var order []string
	for _, e := range evs {
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		name := strings.TrimSuffix(e.Name, "_kernel_time")
		if _, ok := info[name]; !ok {
			var shapes []string
			for _, m := range e.Args.Inputs {
				for _, dims := range m {
					shapes = append(shapes, fmt.Sprint(dims))
				}
			}
			info[name] = nodeTime{Name: name, Op: e.Args.OpName, Provider: e.Args.Provider, Shapes: strings.Join(shapes, " ")}
			order = append(order, name)
		}
		times[name] = append(times[name], float64(e.Dur))
	}
	p := profile{Path: path}
	for _, name := range order {
		n := info[name]
		n.Us = median(times[name])
		p.Total += n.Us
		p.Nodes = append(p.Nodes, n)
	}
	return p, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printOps sums node times per kernel, one column per model.
func printOps(all []profile) {
	sums := map[string][]float64{}
	counts := map[string][]int{}
	for i, p := range all {
		for _, n := range p.Nodes {
			if sums[n.Op] == nil {
				sums[n.Op], counts[n.Op] = make([]float64, len(all)), make([]int, len(all))
			}
			sums[n.Op][i] += n.Us
			counts[n.Op][i]++
		}
	}
	ops := make([]string, 0, len(sums))
	for op := range sums {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(a, b int) bool { return sums[ops[a]][0] > sums[ops[b]][0] })
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "kernel\t")
	for _, p := range all {
		fmt.Fprintf(tw, "%s µs (nodes)\t", filepath.Base(p.Path))
	}
	fmt.Fprintln(tw)
	for _, op := range ops {
		fmt.Fprintf(tw, "%s\t", op)
		for i := range all {
			fmt.Fprintf(tw, "%.0f (%d)\t", sums[op][i], counts[op][i])
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "total\t")
	for _, p := range all {
		fmt.Fprintf(tw, "%.0f (%d)\t", p.Total, len(p.Nodes))
	}
	fmt.Fprintln(tw)
	tw.Flush()
}

func printTop(p profile, n int) {
	nodes := slices.Clone(p.Nodes)
	sort.SliceStable(nodes, func(a, b int) bool { return nodes[a].Us > nodes[b].Us })
	fmt.Printf("\n%s: %d slowest of %d nodes\n", p.Path, min(n, len(nodes)), len(nodes))
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	for _, x := range nodes[:min(n, len(nodes))] {
		fmt.Fprintf(tw, "%.0f µs\t%s\t%s\t%s\n", x.Us, x.Op, x.Name, x.Shapes)
	}
	tw.Flush()
}
