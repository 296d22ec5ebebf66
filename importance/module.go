package importance

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// Module-aware magnitude (DIMAP), data-free. Every weight w_k of a layer
// scores w_k² / Σ_{j: |w_j| ≥ |w_k|} w_j² over the weights of its layer
// (the largest scores 1; equal magnitudes share one denominator). A
// channel scores the sum of the scores of its weights in every layer of
// its group (producer rows and consumer columns). Channels are ranked
// globally within their module, and each module loses its share of the
// target: ratio × its channels (with --scope local, every group loses
// the ratio, ranked by the same scores).
//
// Modules (pooled across stages). Transformers, when the graph has a
// MatMul between two activations: attention-qkv (layers whose output
// reaches such a MatMul), attention-proj (layers whose input comes from
// one), mlp (layers next to a Gelu/Erf/Relu/Sigmoid/Silu activation) and
// auxiliary (the rest: embeddings, heads). CNNs: stem (a Conv fed by a
// graph input), downsample (a Conv that reads a branching value and
// reaches an Add through BatchNormalization/Identity only: the strided
// shortcut), classifier (Gemm/MatMul) and conv (every other Conv).
// A group belongs to the module of its first producer layer.
type Module struct {
	// Modules names each prunable group's module (by group id).
	Modules map[int]string
}

// Name implements Scorer.
func (*Module) Name() string { return "module" }

// Score implements Scorer.
func (mo *Module) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	s := make([]float64, grp.Size)
	for _, mem := range grp.Members {
		if mem.Kind != prune.KindWeightIn && mem.Kind != prune.KindWeightOut {
			continue
		}
		t, ok := g.Constant(mem.Tensor)
		if !ok {
			continue
		}
		w, err := graph.Float32s(t)
		if err != nil {
			return nil, err
		}
		ws := CumulativeScores(w)
		outer, inner := 1, 1
		for _, d := range t.Dims[:mem.Axis] {
			outer *= int(d)
		}
		for _, d := range t.Dims[mem.Axis+1:] {
			inner *= int(d)
		}
		n := len(mem.Map)
		for o := range outer {
			for p, idx := range mem.Map {
				if idx < 0 || idx >= grp.Size {
					continue
				}
				base := (o*n + p) * inner
				for k := range inner {
					s[idx] += ws[base+k]
				}
			}
		}
	}
	return s, nil
}

// CumulativeScores returns w_k² / Σ_{j: |w_j| ≥ |w_k|} w_j² for every
// weight (0 for a zero weight).
func CumulativeScores(w []float32) []float64 {
	idx := make([]int, len(w))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(float64(w[idx[a]])) > math.Abs(float64(w[idx[b]])) })
	out := make([]float64, len(w))
	acc := 0.0
	for i := 0; i < len(idx); {
		// A run of equal magnitudes shares the denominator.
		j := i
		mag := math.Abs(float64(w[idx[i]]))
		for j < len(idx) && math.Abs(float64(w[idx[j]])) == mag {
			acc += mag * mag
			j++
		}
		for _, k := range idx[i:j] {
			if acc > 0 {
				out[k] = mag * mag / acc
			}
		}
		i = j
	}
	return out
}

// NewModule classifies the prunable groups of an analysis into modules.
func NewModule(an *prune.Analysis) *Module {
	g := an.Graph()
	cls := classifyLayers(g)
	mo := &Module{Modules: map[int]string{}}
	for _, grp := range an.Prunable() {
		mod := ""
		for _, mem := range grp.Members {
			if mem.Kind == prune.KindWeightOut {
				if c, ok := cls[mem.Node]; ok {
					mod = c
					break
				}
			}
		}
		if mod == "" {
			mod = "auxiliary"
		}
		mo.Modules[grp.ID] = mod
	}
	return mo
}

// Plan implements allocator: global ranking within each module.
func (mo *Module) Plan(ctx context.Context, an *prune.Analysis, s prune.Settings) (*prune.Plan, error) {
	scores, err := ScoreAll(ctx, mo, an)
	if err != nil {
		return nil, err
	}
	if s.Scope == "local" {
		return an.Select(scores, s)
	}
	if s.Options == nil {
		s.Options = &prune.CriterionOptions{}
	}
	s.Options.Modules = map[string]string{}
	if len(s.KindRatios) > 0 || (s.Target != "" && s.Target != "channels") {
		// Kind ratios and params/MACs targets: module_kinds.go.
		return mo.planByRank(an, s, scores)
	}
	free, _ := kindSplit(an, s)
	inFree := map[int]bool{}
	for _, g := range free {
		inFree[g.ID] = true
	}
	type cand struct {
		score      float64
		group, idx int
	}
	byMod := map[string][]cand{}
	size := map[string]int{}
	limit := map[int]int{}
	for _, grp := range an.Prunable() {
		mod := mo.Modules[grp.ID]
		s.Options.Modules[fmt.Sprint(grp.ID)] = mod
		if !inFree[grp.ID] {
			continue // an embedding width without --prune-embed stays whole
		}
		size[mod] += grp.Size
		limit[grp.ID] = grp.Size - max(1, int(math.Ceil((1-s.MaxLayerRatio)*float64(grp.Size))))
		for i, v := range scores[grp.ID] {
			byMod[mod] = append(byMod[mod], cand{v, grp.ID, i})
		}
	}
	removed := map[int]int{}
	for _, mod := range sortedNames(byMod) {
		cs := byMod[mod]
		sort.SliceStable(cs, func(a, b int) bool { return cs[a].score < cs[b].score })
		want := int(math.Round(s.Ratio * float64(size[mod])))
		for _, c := range cs {
			if want == 0 {
				break
			}
			if removed[c.group] < limit[c.group] {
				removed[c.group]++
				want--
			}
		}
		if want > 0 {
			return nil, fmt.Errorf("importance: %w: module %s cannot lose %.0f%% of its channels under max-layer-ratio %v", prune.ErrTarget, mod, 100*s.Ratio, s.MaxLayerRatio)
		}
	}
	keep := map[int]int{}
	for _, grp := range free {
		keep[grp.ID] = grp.Size - removed[grp.ID]
	}
	return an.PlanWithCounts(s, scores, keep)
}

// classifyLayers names the module of every Conv/Gemm/MatMul node with a
// constant weight.
func classifyLayers(g *graph.Graph) map[string]string {
	out := map[string]string{}
	attnMatMul := func(n *graph.Node) bool {
		if n.Op() != "MatMul" {
			return false
		}
		_, c0 := g.Constant(n.Input(0))
		_, c1 := g.Constant(n.Input(1))
		return !c0 && !c1
	}
	transformer := false
	for _, n := range g.Nodes {
		if attnMatMul(n) {
			transformer = true
			break
		}
	}
	layers := calib.Layers(g)
	isGraphInput := map[string]bool{}
	for _, in := range g.Inputs {
		isGraphInput[in.Name] = true
	}
	// forward: does value v reach a node satisfying f within depth steps
	// through nodes that are not weight layers?
	var forward func(v string, depth int, f func(*graph.Node) bool) bool
	forward = func(v string, depth int, f func(*graph.Node) bool) bool {
		if depth == 0 {
			return false
		}
		for _, c := range g.Consumers(v) {
			if f(c) {
				return true
			}
			if layers[c.Name()] != nil {
				continue
			}
			for _, o := range c.Proto.GetOutput() {
				if forward(o, depth-1, f) {
					return true
				}
			}
		}
		return false
	}
	var backward func(v string, depth int, f func(*graph.Node) bool) bool
	backward = func(v string, depth int, f func(*graph.Node) bool) bool {
		p := g.Producer(v)
		if p == nil || depth == 0 {
			return false
		}
		if f(p) {
			return true
		}
		if layers[p.Name()] != nil {
			return false
		}
		for _, in := range p.Proto.GetInput() {
			if _, c := g.Constant(in); !c && in != "" && backward(in, depth-1, f) {
				return true
			}
		}
		return false
	}
	activation := func(n *graph.Node) bool {
		switch n.Op() {
		case "Gelu", "Erf", "Relu", "Sigmoid", "Silu", "HardSwish", "Tanh":
			return true
		}
		return false
	}
	for name, l := range layers {
		n := l.Node
		if transformer {
			switch {
			case forward(n.Output(0), 6, attnMatMul):
				out[name] = "attention-qkv"
			case backward(n.Input(0), 6, attnMatMul):
				out[name] = "attention-proj"
			case forward(n.Output(0), 3, activation) || backward(n.Input(0), 3, activation):
				out[name] = "mlp"
			default:
				out[name] = "auxiliary"
			}
			continue
		}
		switch {
		case !l.Desc.Spatial:
			out[name] = "classifier"
		case fedByInput(g, n.Input(0), isGraphInput):
			out[name] = "stem"
		case len(g.Consumers(n.Input(0))) > 1 && reachesAdd(g, n.Output(0)):
			out[name] = "downsample"
		default:
			out[name] = "conv"
		}
	}
	return out
}

// fedByInput reports whether v is a graph input or comes from one
// through single-input ops without a weight layer.
func fedByInput(g *graph.Graph, v string, inputs map[string]bool) bool {
	for range 8 {
		if inputs[v] {
			return true
		}
		p := g.Producer(v)
		if p == nil {
			return false
		}
		if graph.IsWeighted(p) {
			return false
		}
		v = p.Input(0)
	}
	return false
}

// reachesAdd reports whether v flows into an Add through BN/Identity only.
func reachesAdd(g *graph.Graph, v string) bool {
	for range 4 {
		cs := g.Consumers(v)
		if len(cs) != 1 {
			return false
		}
		switch cs[0].Op() {
		case "Add":
			return true
		case "BatchNormalization", "Identity":
			v = cs[0].Output(0)
		default:
			return false
		}
	}
	return false
}
