// Command heads-oracle measures how well head scores predict what a head
// is worth on the trained Fashion-MNIST ViT (docs/PRUNING.md, module):
//
//	go run ./bench/heads-oracle
//
// It removes each head alone and records the accuracy lost (the
// brute-force oracle), prints the data-aware scores (wanda, flap, obs)
// and their rank correlation with that loss, each head's output energy
// Σ‖x_j‖² on the calibration images against its output-projection
// column energy Σ‖W_o[:,j]‖², the accuracy of ranking by the oracle
// itself, and DIMAP (module) and magnitude restricted to subsets of a
// head's weights (Q+K rows, V rows, output-projection columns) at 25%
// and 50% of the heads removed.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

var raw []byte
var x tensor.Dense
var y []int64

func acc(b []byte) float64 {
	s, err := ort.NewSession(b, ort.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]tensor.Dense{"input": x}, nil)
	if err != nil {
		panic(err)
	}
	l, _ := out[0].Float32s()
	return check.Top1(l, y)
}

func load() (*graph.Model, *prune.Analysis) {
	m, _ := graph.Parse(raw)
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		panic(err)
	}
	return m, an
}

// filtered group: members kept by f
func sub(g *prune.Group, f func(prune.Member) bool) *prune.Group {
	c := *g
	c.Members = nil
	for _, m := range g.Members {
		if f(m) {
			c.Members = append(c.Members, m)
		}
	}
	return &c
}

func main() {
	raw, _ = os.ReadFile("fixtures/models/fmnist_vit_op17.onnx")
	x, _ = tensor.ReadNpyFile("fixtures/data/fmnist_test_x.npy")
	yd, _ := tensor.ReadNpyFile("fixtures/data/fmnist_test_y.npy")
	y, _ = yd.Int64s()
	m, an := load()
	_ = m
	// brute force: drop each head alone
	type hd struct {
		gid, idx int
		drop     float64
	}
	var heads []hd
	base := acc(raw)
	for _, g := range an.Prunable() {
		if g.Kind != prune.KindHeads {
			continue
		}
		for i := range g.Size {
			m2, an2 := load()
			sc := map[int][]float64{}
			for _, g2 := range an2.Prunable() {
				s := make([]float64, g2.Size)
				for j := range s {
					s[j] = 1
				}
				if g2.ID == g.ID {
					s[i] = 0
				}
				sc[g2.ID] = s
			}
			p, err := an2.Select(sc, prune.Settings{Scope: "global", Target: "channels", MaxLayerRatio: 0.8, KindRatios: map[string]float64{prune.KindHeads: 1.0 / 16}})
			if err != nil {
				panic(err)
			}
			an2.ApplyPlan(p)
			b, _ := m2.Marshal()
			heads = append(heads, hd{g.ID, i, base - acc(b)})
		}
	}
	fmt.Println("base", base)
	for _, h := range heads {
		fmt.Printf("g%d h%d drop %.3f\n", h.gid, h.idx, h.drop)
	}
	// data-aware criteria
	src, err := calib.Open("fixtures/data/fmnist_calib_x.npy", m, 0)
	if err != nil {
		panic(err)
	}
	d := importance.Data{Src: src}
	wa, _ := importance.NewWanda(context.Background(), m, an, d)
	fl, _ := importance.NewFLAP(context.Background(), m, an, d)
	ob, _ := importance.NewOBS(context.Background(), m, an, d, 0)
	for _, c := range []importance.Scorer{wa, fl, ob} {
		var pairs [][2]float64
		for _, g := range an.Prunable() {
			if g.Kind != prune.KindHeads {
				continue
			}
			s, _ := c.Score(an.Graph(), g)
			for _, h := range heads {
				if h.gid == g.ID {
					pairs = append(pairs, [2]float64{s[h.idx], h.drop})
				}
			}
			fmt.Println(c.Name(), g.ID, s)
		}
		fmt.Printf("%s spearman %.2f\n", c.Name(), spearman(pairs))
	}
	// per-head activation energy and o column energy
	for _, g := range an.Prunable() {
		if g.Kind != prune.KindHeads {
			continue
		}
		for _, mem := range g.Members {
			if mem.Kind != prune.KindWeightIn {
				continue
			}
			var node *graph.Node
			for _, n := range an.Graph().Nodes {
				if n.Name() == mem.Node {
					node = n
				}
			}
			l, err := calib.NewLayer(an.Graph(), node)
			if err != nil {
				continue
			}
			norms, _ := importance.FeatureNorms(context.Background(), m, d, map[string]*calib.Layer{"k": l})
			w, _ := l.Matrix(an.Graph())
			act, col := make([]float64, g.Size), make([]float64, g.Size)
			for p, idx := range mem.Map {
				if idx < 0 {
					continue
				}
				act[idx] += norms["k"][p] * norms["k"][p]
				for r := range l.Out() {
					col[idx] += w[r*l.In()+p] * w[r*l.In()+p]
				}
			}
			fmt.Printf("%s act %.3g col %.3g\n", mem.Node, act, col)
		}
	}
	// oracle ranking: by single-head drop
	{
		scores := map[int][]float64{}
		for _, g := range an.Prunable() {
			s := make([]float64, g.Size)
			for _, h := range heads {
				if h.gid == g.ID {
					s[h.idx] = h.drop
				}
			}
			scores[g.ID] = s
		}
		for _, r := range []float64{0.25, 0.5} {
			m2, an2 := load()
			p, _ := an2.Select(scores, prune.Settings{Scope: "global", Target: "channels", MaxLayerRatio: 0.8, KindRatios: map[string]float64{prune.KindHeads: r}})
			an2.ApplyPlan(p)
			b, _ := m2.Marshal()
			fmt.Printf("oracle single-head drop ranking %.0f%%: %.1f\n", 100*r, 100*acc(b))
		}
	}
	mo := importance.NewModule(an)
	variants := map[string]func(prune.Member) bool{
		"all": func(prune.Member) bool { return true },
		"o":   func(mm prune.Member) bool { return mm.Kind == prune.KindWeightIn },
		"v+o": func(mm prune.Member) bool { return mm.Kind == prune.KindWeightIn || strings.Contains(mm.Node, "/v/") },
		"q+k": func(mm prune.Member) bool {
			return strings.Contains(mm.Node, "/q/") || strings.Contains(mm.Node, "/k/")
		},
		"v": func(mm prune.Member) bool { return strings.Contains(mm.Node, "/v/") },
	}
	var names []string
	for k := range variants {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, crit := range []string{"module", "magnitude"} {
		for _, vn := range names {
			f := variants[vn]
			scores := map[int][]float64{}
			var pairs [][2]float64
			for _, g := range an.Prunable() {
				gg := g
				if g.Kind == prune.KindHeads {
					gg = sub(g, func(mm prune.Member) bool {
						return (mm.Kind == prune.KindWeightIn || mm.Kind == prune.KindWeightOut) && f(mm)
					})
				}
				var s []float64
				var err error
				if crit == "module" {
					s, err = mo.Score(an.Graph(), gg)
				} else {
					s, err = importance.Magnitude{P: 2}.Score(an.Graph(), gg)
				}
				if err != nil {
					panic(err)
				}
				scores[g.ID] = s
				for _, h := range heads {
					if h.gid == g.ID {
						pairs = append(pairs, [2]float64{s[h.idx], h.drop})
					}
				}
			}
			var res []string
			for _, r := range []float64{0.25, 0.5} {
				m2, an2 := load()
				p, err := an2.Select(scores, prune.Settings{Scope: "global", Target: "channels", MaxLayerRatio: 0.8, KindRatios: map[string]float64{prune.KindHeads: r}})
				if err != nil {
					panic(err)
				}
				an2.ApplyPlan(p)
				b, _ := m2.Marshal()
				res = append(res, fmt.Sprintf("%.0f%%: %.1f", 100*r, 100*acc(b)))
			}
			fmt.Printf("%s %-4s spearman(score, drop) %.2f  %s\n", crit, vn, spearman(pairs), strings.Join(res, "  "))
		}
	}
}

func rank(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	r := make([]float64, len(v))
	for k, i := range idx {
		r[i] = float64(k)
	}
	return r
}

func spearman(p [][2]float64) float64 {
	a, b := make([]float64, len(p)), make([]float64, len(p))
	for i := range p {
		a[i], b[i] = p[i][0], p[i][1]
	}
	ra, rb := rank(a), rank(b)
	n := float64(len(p))
	var d2 float64
	for i := range ra {
		d := ra[i] - rb[i]
		d2 += d * d
	}
	return 1 - 6*d2/(n*(n*n-1))
}
