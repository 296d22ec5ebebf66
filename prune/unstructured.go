package prune

import (
	"fmt"
	"math"
	"sort"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Unstructured global magnitude pruning and N:M masks. Both write zeros
// into the weights of Conv, ConvTranspose, Gemm and MatMul (float
// initializers read as the weight operand) and keep every shape.
//
// Global MP with the minimum-threshold rule: the target is
// Sparsity × (all such weights). Layers with fewer than MinSize weights
// are too small to prune and stay dense. Every other layer may lose at
// most MaxLayer of its weights. One threshold on |w| is found over the
// unclamped layers so that the target is met; any layer the threshold
// would take past MaxLayer is clamped there (its smallest MaxLayer·n
// weights go) and the threshold is found again over the rest for what
// remains. Ties break by layer order then position, so results are
// deterministic.

// UnstructuredOptions sets global magnitude pruning.
type UnstructuredOptions struct {
	Sparsity float64
	MaxLayer float64 // default 0.8
	MinSize  int64   // default DefaultMinLayerSize
}

// DefaultMinLayerSize is the smallest layer unstructured pruning touches:
// below it, the few weights removed save nothing and hurt most.
const DefaultMinLayerSize = 1024

// LayerStats is one weight's achieved sparsity.
type LayerStats struct {
	Tensor   string  `json:"tensor"`
	Node     string  `json:"node"`
	Size     int64   `json:"size"`
	Zeros    int64   `json:"zeros"`
	Sparsity float64 `json:"sparsity"`
	Note     string  `json:"note,omitempty"`
}

// SparsityReport is the result of Unstructured or NM.
type SparsityReport struct {
	Sparsity float64      `json:"sparsity"`
	Layers   []LayerStats `json:"layers"`
}

type weight struct {
	name, node string
	t          *onnx.TensorProto
	w          []float32
	inAxis     int // the input-feature axis, for N:M
}

// weights lists the weight operands of Conv/ConvTranspose/Gemm/MatMul,
// each once, in node order.
func weights(m *graph.Model) ([]*weight, error) {
	g := m.Graph
	seen := map[string]bool{}
	var out []*weight
	for _, n := range g.Nodes {
		d, ok := graph.WeightedOf(n)
		if !ok || n.Domain() != "" {
			continue
		}
		name, axis := d.Weight(), d.InAxis
		if seen[name] {
			continue
		}
		v := g.Value(name)
		if v == nil || v.Initializer == nil || v.IsInput || !graph.IsFloat(graph.DataTypeOf(v.Initializer)) || len(v.Initializer.Dims) < 2 {
			continue
		}
		w, err := graph.Float32s(v.Initializer)
		if err != nil {
			return nil, fmt.Errorf("prune: %q: %w", name, err)
		}
		seen[name] = true
		out = append(out, &weight{name: name, node: n.Name(), t: v.Initializer, w: w, inAxis: axis})
	}
	return out, nil
}

// Unstructured zeroes weights by global magnitude.
func Unstructured(m *graph.Model, o UnstructuredOptions) (*SparsityReport, error) {
	if o.MaxLayer == 0 {
		o.MaxLayer = 0.8
	}
	if o.MinSize == 0 {
		o.MinSize = DefaultMinLayerSize
	}
	if math.IsNaN(o.Sparsity) || o.Sparsity < 0 || o.Sparsity >= 1 || o.MaxLayer <= 0 || o.MaxLayer >= 1 {
		return nil, fmt.Errorf("prune: %w: sparsity %v, max layer %v", ErrInvalidOption, o.Sparsity, o.MaxLayer)
	}
	ws, err := weights(m)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, w := range ws {
		total += int64(len(w.w))
	}
	need := int64(math.Round(o.Sparsity * float64(total)))
	zeros := make([]int64, len(ws)) // per layer
	clamped := make([]bool, len(ws))
	capOf := func(i int) int64 { return int64(math.Floor(o.MaxLayer * float64(len(ws[i].w)))) }
	var room int64
	for i, w := range ws {
		if int64(len(w.w)) >= o.MinSize {
			room += capOf(i)
		}
	}
	if need > room {
		return nil, fmt.Errorf("prune: %w: sparsity %.3f asked, at most %.3f with layers under %d weights dense and %.2f per layer",
			ErrTarget, o.Sparsity, float64(room)/float64(max(total, 1)), o.MinSize, o.MaxLayer)
	}
	type entry struct {
		mag        float32
		layer, pos int
	}
	for {
		rest := need
		var pool []entry
		for i, w := range ws {
			if int64(len(w.w)) < o.MinSize {
				continue
			}
			if clamped[i] {
				rest -= capOf(i)
				continue
			}
			for p, x := range w.w {
				pool = append(pool, entry{float32(math.Abs(float64(x))), i, p})
			}
		}
		sort.Slice(pool, func(a, b int) bool {
			if pool[a].mag != pool[b].mag {
				return pool[a].mag < pool[b].mag
			}
			if pool[a].layer != pool[b].layer {
				return pool[a].layer < pool[b].layer
			}
			return pool[a].pos < pool[b].pos
		})
		for i := range zeros {
			zeros[i] = 0
		}
		for _, e := range pool[:max(rest, 0)] {
			zeros[e.layer]++
		}
		again := false
		for i := range ws {
			if !clamped[i] && zeros[i] > capOf(i) {
				clamped[i], again = true, true
			}
		}
		if !again {
			for i := range ws {
				if clamped[i] {
					zeros[i] = capOf(i)
				}
			}
			break
		}
	}
	for i, w := range ws {
		zeroSmallest(w.w, zeros[i])
	}
	return write(ws, total)
}

// zeroSmallest zeroes the k smallest |w| (ties by position).
func zeroSmallest(w []float32, k int64) {
	idx := make([]int, len(w))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(float64(w[idx[a]])) < math.Abs(float64(w[idx[b]])) })
	for _, i := range idx[:k] {
		w[i] = 0
	}
}

func write(ws []*weight, total int64) (*SparsityReport, error) {
	r := &SparsityReport{}
	var z int64
	for _, w := range ws {
		if err := graph.SetFloat32s(w.t, w.t.Dims, w.w); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		var c int64
		for _, x := range w.w {
			if x == 0 {
				c++
			}
		}
		z += c
		r.Layers = append(r.Layers, LayerStats{Tensor: w.name, Node: w.node, Size: int64(len(w.w)), Zeros: c,
			Sparsity: float64(c) / float64(len(w.w))})
	}
	r.Sparsity = float64(z) / float64(max(total, 1))
	return r, nil
}

// NM keeps, in every run of mm consecutive weights along a weight's input
// dimension, the n largest |w| (ties keep the earlier). Weights whose
// input dimension is not a multiple of mm are left dense and noted.
func NM(m *graph.Model, n, mm int) (*SparsityReport, error) {
	if n <= 0 || mm <= n {
		return nil, fmt.Errorf("prune: %w: N:M %d:%d", ErrInvalidOption, n, mm)
	}
	ws, err := weights(m)
	if err != nil {
		return nil, err
	}
	var total int64
	notes := map[string]string{}
	for _, w := range ws {
		total += int64(len(w.w))
		d := w.t.Dims
		in := d[w.inAxis]
		if in%int64(mm) != 0 {
			notes[w.name] = fmt.Sprintf("input dim %d not a multiple of %d: dense", in, mm)
			continue
		}
		outer := prod(d[:w.inAxis])
		inner := prod(d[w.inAxis+1:])
		grp := make([]int64, mm)
		for o := int64(0); o < outer; o++ {
			for k := int64(0); k < inner; k++ {
				for s := int64(0); s < in; s += int64(mm) {
					for j := range grp {
						grp[j] = (o*in+s+int64(j))*inner + k
					}
					sort.SliceStable(grp, func(a, b int) bool {
						return math.Abs(float64(w.w[grp[a]])) > math.Abs(float64(w.w[grp[b]]))
					})
					for _, p := range grp[n:] {
						w.w[p] = 0
					}
				}
			}
		}
	}
	r, err := write(ws, total)
	if err != nil {
		return nil, err
	}
	for i := range r.Layers {
		r.Layers[i].Note = notes[r.Layers[i].Tensor]
	}
	return r, nil
}
