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

// UnstructuredScored zeroes weights of Conv (group 1), Gemm and MatMul
// layers by a criterion's per-weight scores instead of |w|:
//
//   - wanda: |w_ij|·‖X_j‖₂; as in Wanda, every output row of a layer
//     loses the same fraction (sparsity, capped at maxLayer), its lowest
//     scores;
//   - module: the DIMAP cumulative scores w_k² / Σ_{|w_j| ≥ |w_k|} w_j²
//     within each layer, ranked globally within each module (see
//     Module); every module loses the sparsity fraction of its weights,
//     no layer more than maxLayer.
//
// Layers with fewer than prune.DefaultMinLayerSize weights stay dense, as
// for magnitude.
func UnstructuredScored(ctx context.Context, m *graph.Model, criterion string, sparsity, maxLayer float64, d Data) (*prune.SparsityReport, error) {
	if maxLayer <= 0 {
		maxLayer = 0.8
	}
	if math.IsNaN(sparsity) || sparsity < 0 || sparsity >= 1 || maxLayer >= 1 {
		return nil, fmt.Errorf("importance: %w: sparsity %v, max layer %v", prune.ErrInvalidOption, sparsity, maxLayer)
	}
	layers := calib.Layers(m.Graph)
	names := sortedNames(layers)
	type lw struct {
		l    *calib.Layer
		w    []float64 // [out, in]
		drop []bool
	}
	all := map[string]*lw{}
	var eligible []string
	for _, k := range names {
		w, err := layers[k].Matrix(m.Graph)
		if err != nil {
			return nil, err
		}
		all[k] = &lw{l: layers[k], w: w, drop: make([]bool, len(w))}
		if int64(len(w)) >= prune.DefaultMinLayerSize {
			eligible = append(eligible, k)
		}
	}
	switch criterion {
	case "wanda":
		use := map[string]*calib.Layer{}
		for _, k := range eligible {
			use[k] = layers[k]
		}
		norms, err := FeatureNorms(ctx, m, d, use)
		if err != nil {
			return nil, err
		}
		frac := min(sparsity, maxLayer)
		for _, k := range eligible {
			x := all[k]
			out, in := x.l.Out(), x.l.In()
			nz := int(math.Round(frac * float64(in)))
			idx := make([]int, in)
			for r := range out {
				for j := range idx {
					idx[j] = j
				}
				row := x.w[r*in : (r+1)*in]
				nrm := norms[k]
				sort.SliceStable(idx, func(a, b int) bool {
					return math.Abs(row[idx[a]])*nrm[idx[a]] < math.Abs(row[idx[b]])*nrm[idx[b]]
				})
				for _, j := range idx[:nz] {
					x.drop[r*in+j] = true
				}
			}
		}
	case "module":
		cls := classifyLayers(m.Graph)
		type cand struct {
			score float64
			layer string
			pos   int
		}
		byMod := map[string][]cand{}
		for _, k := range eligible {
			x := all[k]
			f := make([]float32, len(x.w))
			for i, v := range x.w {
				f[i] = float32(v)
			}
			for i, s := range CumulativeScores(f) {
				byMod[cls[k]] = append(byMod[cls[k]], cand{s, k, i})
			}
		}
		for _, mod := range sortedNames(byMod) {
			cs := byMod[mod]
			sort.SliceStable(cs, func(a, b int) bool { return cs[a].score < cs[b].score })
			want := int(math.Round(sparsity * float64(len(cs))))
			taken := map[string]int{}
			for _, c := range cs {
				if want == 0 {
					break
				}
				x := all[c.layer]
				if taken[c.layer] < int(math.Floor(maxLayer*float64(len(x.w)))) {
					x.drop[c.pos] = true
					taken[c.layer]++
					want--
				}
			}
			if want > 0 {
				return nil, fmt.Errorf("importance: %w: module %s cannot reach sparsity %v under max layer ratio %v", prune.ErrTarget, mod, sparsity, maxLayer)
			}
		}
	default:
		return nil, fmt.Errorf("importance: %w: unstructured %q (magnitude is prune.Unstructured; scored: wanda, module)", ErrUnknownCriterion, criterion)
	}
	rep := &prune.SparsityReport{}
	var zeros, total int64
	for _, k := range names {
		x := all[k]
		var z int64
		for i, dr := range x.drop {
			if dr {
				x.w[i] = 0
			}
			if x.w[i] == 0 {
				z++
			}
		}
		if err := x.l.SetMatrix(m.Graph, x.w); err != nil {
			return nil, err
		}
		st := prune.LayerStats{Tensor: x.l.Weight, Node: k, Size: int64(len(x.w)), Zeros: z, Sparsity: float64(z) / float64(len(x.w))}
		if int64(len(x.w)) < prune.DefaultMinLayerSize {
			st.Note = "too small: dense"
		}
		rep.Layers = append(rep.Layers, st)
		zeros += z
		total += int64(len(x.w))
	}
	if total > 0 {
		rep.Sparsity = float64(zeros) / float64(total)
	}
	return rep, nil
}

// Sparsify opens the calibration data (wanda) and runs UnstructuredScored.
func Sparsify(ctx context.Context, m *graph.Model, criterion string, sparsity, maxLayer float64, calibPath string, samples int) (*prune.SparsityReport, error) {
	var d Data
	if calibPath != "" {
		src, err := calib.Open(calibPath, m, samples)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		d.Src = src
	}
	return UnstructuredScored(ctx, m, criterion, sparsity, maxLayer, d)
}
