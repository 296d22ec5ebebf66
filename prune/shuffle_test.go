package prune_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// shuffleChain builds a ShuffleNetV2-like trunk of C = 4 channels: a
// stem Conv, then units that Split the channels in halves, run the second
// half through a 1×1 Conv, Concat and channel-shuffle (Reshape [N,2,C/2],
// Transpose, Reshape [N,C]); then a depthwise Conv and a head. After the
// second unit every trunk channel maps to one index of the stem's group.
func shuffleChain(t *testing.T, units int) *graph.Model {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", f32, 1, 3, 2, 2)
	ints := func(name string, v ...int64) string { return b.InitInts(name, []int64{int64(len(v))}, v) }
	y := b.Node("Conv", []string{x, initRand(b, "stem", 1, 4, 3, 1, 1)})
	for u := range units {
		halves := b.NodeN("Split", []string{y, ints("split"+string(rune('a'+u)), 2, 2)}, 2, build.Int("axis", 1))
		br := b.Node("Conv", []string{halves[1], initRand(b, "branch"+string(rune('a'+u)), 2+u, 2, 2, 1, 1)})
		br = b.Node("Relu", []string{br})
		y = b.Node("Concat", []string{halves[0], br}, build.Int("axis", 1))
		y = b.Node("Reshape", []string{y, ints("s1"+string(rune('a'+u)), 1, 2, 2, 2, 2)})
		y = b.Node("Transpose", []string{y}, build.Ints("perm", 0, 2, 1, 3, 4))
		y = b.Node("Reshape", []string{y, ints("s2"+string(rune('a'+u)), 1, 4, 2, 2)})
	}
	y = b.Node("Conv", []string{y, initRand(b, "dw", 9, 4, 1, 3, 3)}, build.Int("group", 4), build.Ints("pads", 1, 1, 1, 1))
	y = b.Node("Conv", []string{y, initRand(b, "head", 10, 3, 4, 1, 1)})
	b.Output(y, f32, 1, 3, 2, 2)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func memberOf(t *testing.T, g *prune.Group, tensor string) prune.Member {
	t.Helper()
	for _, m := range g.Members {
		if m.Tensor == tensor {
			return m
		}
	}
	t.Fatalf("group %d has no member %s", g.ID, tensor)
	return prune.Member{}
}

// TestShuffleCollapsedIndex: the depthwise Conv after two shuffle units
// has all its channels on one index of a four-index group. Removing that
// index is refused by Apply (it would write a zero-channel Conv), and
// selection, however high the ratio, keeps it; the result runs.
func TestShuffleCollapsedIndex(t *testing.T) {
	m := shuffleChain(t, 2)
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var g *prune.Group
	for _, grp := range an.Prunable() {
		for _, mem := range grp.Members {
			if mem.Tensor == "stem" {
				g = grp
			}
		}
	}
	if g == nil {
		t.Fatal("the stem's group is not prunable")
	}
	dw := memberOf(t, g, "dw")
	pinned := dw.Map[0]
	for _, i := range dw.Map {
		if i != pinned {
			t.Fatalf("dw map %v: want every channel on one index", dw.Map)
		}
	}
	if g.Size < 2 {
		t.Fatalf("group size %d", g.Size)
	}
	before, _ := m.Marshal()
	var keep []int
	for i := range g.Size {
		if i != pinned {
			keep = append(keep, i)
		}
	}
	err = an.Apply(map[int][]int{g.ID: keep})
	if !errors.Is(err, prune.ErrInvalidOption) {
		t.Fatalf("removing the collapsed index: err %v, want ErrInvalidOption", err)
	}
	if after, _ := m.Marshal(); !bytes.Equal(before, after) {
		t.Error("a refused Apply changed the model")
	}
	in := map[string]tensor.Dense{"x": mustDense(t, []int64{1, 3, 2, 2}, weights(12, 5))}
	for _, scope := range []string{"local", "global"} {
		m := shuffleChain(t, 2)
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The stem's group scores lowest, its collapsed index lowest of all.
		scores := map[int][]float64{}
		for _, grp := range an.Prunable() {
			sc := make([]float64, grp.Size)
			for i := range sc {
				sc[i] = 1 + float64(i)
				if grp.ID == g.ID {
					sc[i] = 0.01 * float64(i)
					if i == pinned {
						sc[i] = -1
					}
				}
			}
			scores[grp.ID] = sc
		}
		// Globally 1 of the 8 channels can go (the other stem indices
		// are needed by covers too, the branches are at their floor).
		ratio := map[string]float64{"local": 0.9, "global": 0.125}[scope]
		p, err := an.Select(scores, prune.Settings{Criterion: "test", Scope: scope, Ratio: ratio, MaxLayerRatio: 0.95})
		if err != nil {
			t.Fatal(err)
		}
		for _, pg := range p.Groups {
			if pg.ID != g.ID {
				continue
			}
			if !slices.Contains(pg.Kept, pinned) {
				t.Errorf("%s: kept %v, want the collapsed index %d kept", scope, pg.Kept, pinned)
			}
			if len(pg.Kept) == g.Size {
				t.Errorf("%s: nothing removed from the stem's group", scope)
			}
		}
		if err := an.ApplyPlan(p); err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		out := run(t, m, in)
		if !equalShape(out[0].Shape, []int64{1, 3, 2, 2}) {
			t.Errorf("%s: output shape %v", scope, out[0].Shape)
		}
	}
}

func mustDense(t *testing.T, dims []int64, v []float32) tensor.Dense {
	t.Helper()
	d, err := tensor.New(dims, v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestShuffleNetHighRatios: ShuffleNetV2's shuffles fold the end of every
// stage onto one index of the stage's group; at high ratios pare used to
// remove it and write a depthwise Conv with zero channels. Every ratio
// and scope must now give a model that runs with the same output shapes,
// whose recounted cost is the plan's. The torchvision x1.0 export is
// checked too when present (bench/unseen).
func TestShuffleNetHighRatios(t *testing.T) {
	models := [][2]string{{filepath.Join(fixtureDir, "models/shufflenet_v2_x05_op13.onnx"), filepath.Join(fixtureDir, "ref/shufflenet_v2_x05_op13.inputs.npz")}}
	if p := "/tmp/pare-unseen/shufflenet_v2_x1_0_op13"; fileExists(p+".onnx") && fileExists(p+".inputs.npz") {
		models = append(models, [2]string{p + ".onnx", p + ".inputs.npz"})
	}
	for _, mi := range models {
		path := mi[0]
		t.Run(filepath.Base(path), func(t *testing.T) {
			load := func() *graph.Model {
				m, err := graph.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			in, err := tensor.ReadNpz(mi[1])
			if err != nil {
				t.Fatal(err)
			}
			orig := load()
			want := run(t, orig, in)
			for _, scope := range []string{"global", "local"} {
				for _, ratio := range []float64{0.5, 0.7, 0.9} {
					s := prune.Settings{Criterion: "magnitude", Scope: scope, Ratio: ratio, MaxLayerRatio: max(0.8, ratio+0.05)}
					m := load()
					an, p := plan(t, m, s)
					if err := an.ApplyPlan(p); err != nil {
						t.Fatalf("%s %.1f: %v", scope, ratio, err)
					}
					maxRelDiff(t, run(t, m, in), want) // shapes
					re, err := prune.Analyze(reload(t, m), prune.Options{})
					if err != nil {
						t.Fatalf("%s %.1f: re-analysis: %v", scope, ratio, err)
					}
					if c := re.Cost(); c != p.After {
						t.Errorf("%s %.1f: recounted cost %+v, plan says %+v", scope, ratio, c, p.After)
					}
					if _, err := graph.Count(reload(t, m)); err != nil {
						t.Errorf("%s %.1f: count: %v", scope, ratio, err)
					}
				}
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
