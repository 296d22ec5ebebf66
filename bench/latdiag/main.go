// Command latdiag compares package latency's table estimate for a
// pruned model with measurements of the pruned model: its layers alone
// at their pruned widths and the whole model, next to the dense model's,
// measured now into an empty cache (the table's entries may be from
// another time and load). It prints the whole-model ratio, the layers'
// ratio and the table's estimate, then the layers whose measured
// latency exceeds the estimate most. Used for docs/BENCHMARKS.md
// ("Latency target").
//
//	go run ./bench/latdiag DENSE.onnx PRUNED.onnx
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/latency"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
)

func main() {
	ctx := context.Background()
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: latdiag DENSE.onnx PRUNED.onnx")
		os.Exit(2)
	}
	if err := ort.Init(""); err != nil {
		panic(err)
	}
	load := func(p string, o latency.Options) (*latency.Model, []prune.Layer) {
		m, err := graph.Load(p)
		if err != nil {
			panic(err)
		}
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			panic(err)
		}
		lm, err := latency.Build(ctx, m, an, o)
		if err != nil {
			panic(err)
		}
		return lm, an.Layers()
	}
	dl, dls := load(os.Args[1], latency.Options{})
	tmp, err := os.MkdirTemp("", "latdiag")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	// Both models' layers at full size and the whole models, measured now
	// into an empty cache.
	dn, _ := load(os.Args[1], latency.Options{Fractions: []float64{1}, CacheDir: tmp})
	pl, pls := load(os.Args[2], latency.Options{Fractions: []float64{1}, CacheDir: tmp})
	var dnsum float64
	for i := range dls {
		dnsum += dn.Layer(i, dls[i].Dims)
	}
	fmt.Printf("now: dense whole %.0f layers %.0f; pruned whole %.0f (ratio %.3f)\n", dn.Whole, dnsum, pl.Whole, pl.Whole/dn.Whole)
	if len(dls) != len(pls) {
		panic("layer count")
	}
	var dsum, est, meas float64
	type row struct {
		name       string
		full, e, m float64
		dd, pd     []int64
	}
	var rows []row
	for i := range dls {
		f := dl.Layer(i, dls[i].Dims)
		e := dl.Layer(i, pls[i].Dims)
		m := pl.Layer(i, pls[i].Dims)
		dsum += f
		est += e
		meas += m
		rows = append(rows, row{dls[i].Node.Name(), f, e, m, dls[i].Dims, pls[i].Dims})
	}
	fmt.Printf("dense: whole %.0f, layers %.0f, rest %.0f\n", dl.Whole, dsum, dl.Rest())
	fmt.Printf("pruned: whole %.0f (ratio %.3f), layers measured %.0f, rest %.0f\n", pl.Whole, pl.Whole/dl.Whole, meas, pl.Rest())
	fmt.Printf("layers now: ratio %.3f\n", meas/dnsum)
	fmt.Printf("estimate: layers %.0f, total %.0f (ratio %.3f)\n", est, est+dl.Rest(), (est+dl.Rest())/(dsum+dl.Rest()))
	sort.Slice(rows, func(a, b int) bool { return rows[a].m-rows[a].e > rows[b].m-rows[b].e })
	for _, r := range rows[:min(25, len(rows))] {
		fmt.Printf("%-60s %v -> %v full %.0f est %.0f meas %.0f\n", r.name, r.dd, r.pd, r.full, r.e, r.m)
	}
}
