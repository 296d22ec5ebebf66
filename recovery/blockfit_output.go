package recovery

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
)

// The model output in an inner block's loss. A block's own loss weighs
// every channel of its output alike, while the blocks after it read
// some far more than others; what a DenseNet layer's bottleneck or a
// ViT block gets wrong matters only as far as the logits show it. With
// BlockFitConfig.Output = w, an inner block's loss is (1 − w) × its own
// relative MSE + w × the model output's error (the KL toward the dense
// softmax for logits, grad.Mixed; else its relative MSE), computed
// through the pruned layers after the block (least-squares fitted, and
// frozen while the block trains), as PD-Quant's prediction-difference
// loss reads quantized blocks through the network after them. Only the
// block's weights train. The output term needs data: on 256 images it
// gained nothing, on 1024 it gained (docs/RESULTS.md, "Block fitting by
// gradient"), for 2.5-4.5 times the fit's CPU.

// outputTargets holds the reference model's output on every batch of
// the calibration data, for the output term.
type outputTargets struct {
	out   blockOut    // the first graph output, every class
	refs  [][]float32 // per batch, flattened per sample
	width int         // values per sample
	ms    float64     // mean square over the data, the relative MSE's scale
	kl    bool        // the output is logits: its term is the KL (grad.Mixed)
}

// newOutputTargets runs ref on src in batches of batch for its first
// output. A run of its own: the fit's segment runners move forward
// block by block and keep nothing past the block in hand.
func newOutputTargets(ctx context.Context, ref *graph.Model, shapes *graph.Shapes, src *calib.Source, batch int, tokens bool) (*outputTargets, error) {
	name := ref.Graph.Outputs[0].Name
	s, c, err := outputClasses(shapes, name)
	if err != nil {
		return nil, err
	}
	rows := make([]int, c)
	for i := range rows {
		rows[i] = i
	}
	t := &outputTargets{out: blockOut{value: name, ref: name, axis: len(s.Dims) - 1, rows: rows}, kl: outputLoss(ref, len(s.Dims), tokens) == grad.KL}
	seg, err := calib.NewSegments(ref, src, batch)
	if err != nil {
		return nil, err
	}
	if t.refs, _, err = blockTargets(ctx, seg, []blockOut{t.out}, batch, false); err != nil {
		return nil, err
	}
	if len(t.refs) == 0 {
		return nil, fmt.Errorf("block fit: no batch of %d samples for the output term", batch)
	}
	t.width = len(t.refs[0]) / batch
	n := 0
	for _, r := range t.refs {
		for _, v := range r {
			t.ms += float64(v) * float64(v)
		}
		n += len(r)
	}
	t.ms = max(t.ms/float64(n), 1e-12)
	return t, nil
}

// through returns the nodes of g an inner block's loss runs with the
// output term: its own and every node after it.
func (b fitBlock) through(g *graph.Graph) []*graph.Node {
	return g.Nodes[slices.Index(g.Nodes, b.nodes[0]):]
}

// outputClasses returns the shape of the model output name and the
// size of its last axis, the values per row the output term matches.
func outputClasses(shapes *graph.Shapes, name string) (graph.TensorShape, int64, error) {
	s, ok := shapes.Of(name)
	if !ok || !s.Ranked || len(s.Dims) == 0 {
		return s, 0, fmt.Errorf("block fit: the output %s has no known shape", name)
	}
	c, ok := s.Dims[len(s.Dims)-1].Value()
	if !ok {
		return s, 0, fmt.Errorf("block fit: the output %s has a free last axis", name)
	}
	return s, c, nil
}

// withOutput extends block b, which starts at nodes[first] of g, with
// every node after it, and matches the model output as well. train
// names the initializers b's own nodes read: the only weights to train.
func withOutput(g *graph.Graph, b fitBlock, t *outputTargets) (ext fitBlock, train map[string]bool) {
	train = map[string]bool{}
	for _, n := range b.nodes {
		for _, in := range n.Proto.Input {
			if g.Initializer(in) != nil {
				train[in] = true
			}
		}
	}
	ext = b
	ext.nodes = slices.Clone(b.through(g))
	ext.outs = append(slices.Clone(b.outs), t.out)
	return ext, train
}

// mixTargets appends the output's references to each batch of refs (the
// block's own, scaled by blockTargets to a mean relative MSE) and
// rescales both parts so that the mean squared error over the
// concatenation is (1 − w) × the block's relative MSE + w × the
// output's. It returns the scales for the block model, the output's
// last.
func mixTargets(refs [][]float32, scales []float64, t *outputTargets, w float64, batch int) ([][]float32, []float64) {
	own := len(refs[0]) / batch
	all := float64(own + t.width)
	f := math.Sqrt(all * (1 - w) / float64(own))
	so := math.Sqrt(all * w / (float64(t.width) * t.ms))
	mixed := make([][]float32, len(refs))
	for k, r := range refs {
		out := make([]float32, 0, batch*(own+t.width))
		for s := range batch {
			for _, v := range r[s*own : (s+1)*own] {
				out = append(out, float32(float64(v)*f))
			}
			for _, v := range t.refs[k][s*t.width : (s+1)*t.width] {
				out = append(out, float32(float64(v)*so))
			}
		}
		mixed[k] = out
	}
	sc := make([]float64, len(scales), len(scales)+1)
	for i, s := range scales {
		sc[i] = s * f
	}
	return mixed, append(sc, so)
}

// appendTargets appends the output's logits, as they are, to each batch
// of refs, for the mixed loss (grad.Mixed), and a scale of 1 for them.
func appendTargets(refs [][]float32, scales []float64, t *outputTargets, batch int) ([][]float32, []float64) {
	own := len(refs[0]) / batch
	out := make([][]float32, len(refs))
	for k, r := range refs {
		o := make([]float32, 0, batch*(own+t.width))
		for s := range batch {
			o = append(o, r[s*own:(s+1)*own]...)
			o = append(o, t.refs[k][s*t.width:(s+1)*t.width]...)
		}
		out[k] = o
	}
	return out, append(slices.Clone(scales), 1)
}
