package recovery

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// ReconDamping is the ridge added (as a fraction of the mean diagonal of
// the input Gram matrix, weight columns only) when re-fitting a layer.
var ReconDamping = 1e-3

// changedLayers lists, in graph order, the Conv/Gemm/MatMul layers of
// the dense model whose input channels the plan removes.
func changedLayers(dense *graph.Model, p *prune.Plan) []*calib.Layer {
	var out []*calib.Layer
	for _, n := range dense.Graph.Nodes {
		if !graph.IsWeighted(n) {
			continue
		}
		l, err := calib.NewLayer(dense.Graph, n)
		if err != nil {
			continue
		}
		for _, k := range prune.KeptPositions(p, l.Weight, l.InAxis(), int(l.Dims[l.InAxis()])) {
			if !k {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// outAxis is the axis of the stored weight over output channels.
func outAxis(l *calib.Layer) int {
	if l.T {
		return 1
	}
	return 0
}

// keptRows returns the dense output rows the pruned layer still has.
func keptRows(l *calib.Layer, p *prune.Plan) []int {
	var rows []int
	for i, k := range prune.KeptPositions(p, l.Weight, outAxis(l), l.Out()) {
		if k {
			rows = append(rows, i)
		}
	}
	return rows
}

// nodeByName finds a node of g.
func nodeByName(g *graph.Graph, name string) *graph.Node {
	for _, n := range g.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// layerBias returns the bias constant of a Conv/Gemm node ("" when it has
// none or it is not a per-output-channel vector).
func layerBias(g *graph.Graph, n *graph.Node, out int) string {
	d, ok := graph.WeightedOf(n)
	if !ok || d.Bias() == "" {
		return ""
	}
	t, ok := g.Constant(d.Bias())
	if !ok {
		return ""
	}
	ne, err := graph.NumElements(t.Dims)
	if err != nil || ne != int64(out) {
		return ""
	}
	return d.Bias()
}

// Reconstruct re-fits, in graph order, the remaining weights (and bias,
// when the layer has one) of every layer whose input channels the plan
// removed, by least squares so that its outputs on the calibration data
// match the dense model's: with x̃ the pruned model's input rows (after
// the layers before it were re-fitted) and x the dense ones,
//
//	W̃ = argmin Σ ‖W̃ x̃ + b̃ − (W_kept x + b_kept)‖²,
//
// solved from Σ x̃ x̃ᵀ (ridge ReconDamping × its mean diagonal) and
// Σ x̃ xᵀ. m is the pruned model (changed in place), dense the model
// before pruning.
func Reconstruct(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int) ([]string, error) {
	return ReconstructBlocks(ctx, m, dense, p, src, batch, false)
}

// ReconstructBlocks is Reconstruct; with blocks, a layer that ends a
// residual block is fitted to the dense block output instead of its own
// (block.go).
func ReconstructBlocks(ctx context.Context, m, dense *graph.Model, p *prune.Plan, src *calib.Source, batch int, blocks bool) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("prune: --reconstruct needs calibration data")
	}
	var notes []string
	changed := changedLayers(dense, p)
	targets := map[string]*blockTarget{}
	capture := denseInputs(changed)
	if blocks {
		for _, dl := range changed {
			n := nodeByName(m.Graph, dl.Node.Name())
			if n == nil {
				continue
			}
			pl, err := calib.NewLayer(m.Graph, n)
			if err != nil {
				continue
			}
			if bt := findBlock(m.Graph, n, pl.Out()); bt != nil && dense.Graph.Value(bt.add) != nil {
				targets[n.Name()] = bt
				capture = append(capture, bt.add)
			}
		}
		if len(targets) > 0 {
			notes = append(notes, fmt.Sprintf("%d layers fitted to their residual block's dense output", len(targets)))
		}
	}
	dr, err := calib.NewRunner(dense, capture)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	for i, dl := range changed {
		progress.Report(ctx, "reconstruction", i, len(changed))
		n := nodeByName(m.Graph, dl.Node.Name())
		if n == nil {
			continue
		}
		pl, err := calib.NewLayer(m.Graph, n)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", dl.Node.Name(), err))
			continue
		}
		rows := keptRows(dl, p)
		if len(rows) != pl.Out() {
			return nil, fmt.Errorf("prune: reconstruct %s: %d kept rows, pruned layer has %d", n.Name(), len(rows), pl.Out())
		}
		bias := layerBias(m.Graph, n, pl.Out())
		cols := pl.In()
		if bias != "" {
			cols++
		}
		gram := calib.NewGram(cols)
		cross := calib.NewCross(cols, dl.In())
		bt := targets[n.Name()]
		names := []string{pl.Input()}
		if bt != nil {
			cross = calib.NewCross(cols, len(rows))
			names = append(names, bt.skip)
		}
		pr, err := calib.NewRunner(m, names)
		if err != nil {
			return nil, err
		}
		err = src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
			dv, err := dr.Run(ctx, in)
			if err != nil {
				return err
			}
			pv, err := pr.Run(ctx, in)
			if err != nil {
				return err
			}
			x, err := dl.Rows(dv[dl.Input()])
			if err != nil {
				return err
			}
			xt, err := pl.Rows(pv[pl.Input()])
			if err != nil {
				return err
			}
			if bias != "" {
				xt = withOnes(xt, pl.In())
			}
			gram.Add(xt)
			if bt != nil {
				conv := n.Op() == "Conv"
				d, err := outputRows(dv[bt.add], conv, dl.Out())
				if err != nil {
					return err
				}
				sk, err := outputRows(pv[bt.skip], conv, len(rows))
				if err != nil {
					return err
				}
				t, err := bt.targetRows(d, dl.Out(), rows, sk)
				if err != nil {
					return err
				}
				return cross.Add(xt, t)
			}
			return cross.Add(xt, x)
		})
		pr.Close()
		if err != nil {
			return nil, err
		}
		wd, err := dl.Matrix(dense.Graph)
		if err != nil {
			return nil, err
		}
		var bd []float64
		if b := layerBias(dense.Graph, dl.Node, dl.Out()); b != "" && bias != "" {
			if bd, err = constVec(dense.Graph, b); err != nil {
				return nil, err
			}
		}
		var sol *mat.Dense
		if bt != nil {
			sol, err = solveTarget(gram, cross, bias != "")
		} else {
			sol, err = solveRefit(gram, cross, wd, dl.In(), rows, bd, bias != "")
		}
		if err != nil {
			return nil, fmt.Errorf("prune: reconstruct %s: %w", n.Name(), err)
		}
		w := make([]float64, pl.Out()*pl.In())
		bnew := make([]float64, pl.Out())
		for r := range pl.Out() {
			for j := range pl.In() {
				w[r*pl.In()+j] = sol.At(j, r)
			}
			if bias != "" {
				bnew[r] = sol.At(pl.In(), r)
			}
		}
		if err := pl.SetMatrix(m.Graph, w); err != nil {
			return nil, err
		}
		if bias != "" {
			if err := setVec(m.Graph, bias, bnew); err != nil {
				return nil, err
			}
		}
	}
	return notes, nil
}

func denseInputs(ls []*calib.Layer) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range ls {
		if !seen[l.Input()] {
			seen[l.Input()] = true
			out = append(out, l.Input())
		}
	}
	return out
}

// withOnes appends a constant 1 to every row of x (cols values each).
func withOnes(x []float64, cols int) []float64 {
	m := len(x) / cols
	out := make([]float64, 0, m*(cols+1))
	for r := range m {
		out = append(out, x[r*cols:(r+1)*cols]...)
		out = append(out, 1)
	}
	return out
}

// solveRefit solves (G + λI) S = C W_keptᵀ + s b_keptᵀ for S (cols × kept
// rows), where s is G's last column when a bias is fitted.
func solveRefit(gram *calib.Gram, cross *calib.Cross, wd []float64, in int, rows []int, bd []float64, fitBias bool) (*mat.Dense, error) {
	c := gram.Cols
	h := gram.Hessian() // (2/N)·S: the same solution, better scaled
	a := dampedGram(h, c, fitBias)
	wk := mat.NewDense(len(rows), in, nil)
	for a2, r := range rows {
		for j := range in {
			wk.Set(a2, j, wd[r*in+j])
		}
	}
	var rhs mat.Dense
	rhs.Mul(mat.NewDense(c, in, cross.C), wk.T())
	rhs.Scale(2/gram.N, &rhs)
	if bd != nil {
		for i := range c {
			s := h[i*c+c-1] // (2/N) Σ x̃_i · 1
			for a2, r := range rows {
				rhs.Set(i, a2, rhs.At(i, a2)+s*bd[r])
			}
		}
	}
	return solveGram(a, &rhs)
}

// solveTarget solves (G + λI) S = (2/N) Σ x̃ tᵀ: the least-squares fit
// of the layer (and bias, when fitted) to target rows t.
func solveTarget(gram *calib.Gram, cross *calib.Cross, fitBias bool) (*mat.Dense, error) {
	a := dampedGram(gram.Hessian(), gram.Cols, fitBias)
	rhs := mat.NewDense(cross.A, cross.B, append([]float64(nil), cross.C...))
	rhs.Scale(2/gram.N, rhs)
	return solveGram(a, rhs)
}

// dampedGram is the c×c matrix h ((2/N)·S) with ReconDamping × its mean
// diagonal added to the weight columns (the bias column, last when
// fitted, is not shrunk).
func dampedGram(h []float64, c int, fitBias bool) *mat.SymDense {
	nw := c
	if fitBias {
		nw--
	}
	mean := 0.0
	for i := range nw {
		mean += h[i*c+i]
	}
	mean /= float64(max(nw, 1))
	if mean <= 0 {
		mean = 1
	}
	a := mat.NewSymDense(c, nil)
	for i := range c {
		for j := i; j < c; j++ {
			v := h[i*c+j]
			if i == j && i < nw {
				v += ReconDamping * mean
			}
			a.SetSym(i, j, v)
		}
	}
	return a
}

// solveGram solves a S = rhs for the damped Gram matrix a.
func solveGram(a *mat.SymDense, rhs *mat.Dense) (*mat.Dense, error) {
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, fmt.Errorf("input Gram matrix is not positive definite")
	}
	var sol mat.Dense
	if err := ch.SolveTo(&sol, rhs); err != nil {
		return nil, err
	}
	return &sol, nil
}

func constVec(g *graph.Graph, name string) ([]float64, error) {
	v, err := g.ConstantFloat64s(name)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return v, nil
}

func setVec(g *graph.Graph, name string, v []float64) error {
	t, ok := g.Constant(name)
	if !ok {
		return fmt.Errorf("prune: %q is not a constant", name)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return graph.SetFloat32s(t, t.Dims, f)
}
