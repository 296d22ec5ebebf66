package recovery

import (
	"fmt"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
)

// Blocks are cut where one float value alone is still to be read: every
// weighted layer falls in exactly one block, blocks follow graph order
// without overlap, and a block whose end is reached from its last
// layers through channelwise ops (a residual Add, a ReLU) matches that
// end itself, so that its fit also absorbs the skip path's error.
func TestCutBlocks(t *testing.T) {
	for _, c := range []struct {
		model         string
		blocks, atEnd int
	}{
		// The patch embedding with the first attention (its conv reaches
		// the residual Add through a Reshape, a Transpose and the class
		// token's Concat: both last layers are matched on their own
		// outputs); attention and MLP of 4 layers, each matched at its
		// residual Add; layer 3's MLP with the final norm and the head,
		// at the logits (the head alone would be a linear map of a fixed
		// input).
		{"fmnist_vit_op17.onnx", 8, 7},
		// The stem with the first inverted residual, 5 more inverted
		// residuals (each expansion with its depthwise and projection),
		// the head conv with the classifier.
		{"fmnist_mobilenet_op17.onnx", 7, 7},
		// One dense layer (bottleneck and growth conv) per block, each
		// ending at a Concat, where its growth conv's own output is
		// matched; transitions join the next layer.
		// The last dense layer holds the final norm and the classifier.
		{"fmnist_densenet_op17.onnx", 12, 1},
		// Two residual stages, the last with the pooling and the
		// classifier, which alone would be a linear map of a fixed
		// input.
		{"fmnist_resnet_op17.onnx", 3, 3},
	} {
		m, err := graph.Load("../fixtures/models/" + c.model)
		if err != nil {
			t.Fatal(err)
		}
		blocks, _, shapes, layers := cutFixture(t, m, []int64{64, 1, 28, 28})
		seen := map[string]int{}
		last, atEnd := -1, 0
		var desc []string
		for i, b := range blocks {
			if b.nodes[0].Index <= last {
				t.Errorf("%s: block %d starts at node %d, before the previous block's end %d", c.model, i, b.nodes[0].Index, last)
			}
			last = b.nodes[len(b.nodes)-1].Index
			for _, n := range b.nodes {
				if layers[n.Name()] != nil {
					seen[n.Name()]++
				}
			}
			outs := blockOuts(m.Graph, shapes, b, layers, func(l *calib.Layer) []int {
				return seqRows(l.Out())
			})
			if len(outs) == 1 && outs[0].value == b.end || b.end == "" && len(outs) == 1 && m.Graph.Value(outs[0].value).IsOutput {
				atEnd++
			}
			desc = append(desc, fmt.Sprintf("%s→%s(%d: %s)", b.input, b.end, len(outs), outs[0].value))
			// Only the block ending at the logits is fitted by the KL.
			b.outs = outs
			if got, want := blockLoss(m, shapes, b, false), map[bool]grad.Loss{true: grad.KL, false: grad.MSE}[i == len(blocks)-1]; got != want {
				t.Errorf("%s: block %d of %d is fitted by the %v, want the %v", c.model, i, len(blocks), got, want)
			}
		}
		t.Logf("%s: %d blocks: %v", c.model, len(blocks), desc)
		for name := range layers {
			if seen[name] != 1 {
				t.Errorf("%s: weighted layer %s is in %d blocks", c.model, name, seen[name])
			}
		}
		if c.blocks > 0 && (len(blocks) != c.blocks || atEnd != c.atEnd) {
			t.Errorf("%s: %d blocks, %d matched at their end; want %d and %d", c.model, len(blocks), atEnd, c.blocks, c.atEnd)
		}
	}
}

func seqRows(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// A Swin block folds its windows into the leading axis: the block whose
// matched value holds a row per window, not per sample, is named and
// left out of the fit, and the others stay in.
func TestBlocksWithoutRowPerSample(t *testing.T) {
	m, err := graph.Load("../fixtures/models/swin_nano_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	blocks, _, shapes, layers := cutFixture(t, m, []int64{64, 3, 32, 32})
	var folded, kept []string
	for _, b := range blocks {
		b.outs = blockOuts(m.Graph, shapes, b, layers, func(l *calib.Layer) []int { return seqRows(l.Out()) })
		if v := notPerSample(shapes, 64, b); v != "" {
			folded = append(folded, v)
		} else {
			kept = append(kept, b.end)
		}
	}
	t.Logf("folded: %v; kept: %v", folded, kept)
	if len(folded) == 0 || len(kept) == 0 {
		t.Fatalf("want both window-folded and per-sample blocks; folded %v, kept %v", folded, kept)
	}
	for _, v := range folded {
		if s, ok := shapes.Of(v); ok && len(s.Dims) > 0 {
			if n, ok := s.Dims[0].Value(); ok && n == 64 {
				t.Errorf("%s leads with the batch (%v) but was named", v, s.Dims)
			}
		}
	}
}

// cutFixture cuts m into blocks at the input shape, every weighted
// layer counted; it returns the blocks, the size-decided values a run
// must give (bakeFixed), the shapes at that size and the layers by
// node name.
func cutFixture(t *testing.T, m *graph.Model, shape []int64) ([]fitBlock, []string, *graph.Shapes, map[string]*calib.Layer) {
	t.Helper()
	in := m.Graph.Inputs[0].Name
	shapes, err := grad.ShapesAt(m, map[string][]int64{in: shape})
	if err != nil {
		t.Fatal(err)
	}
	layers := layersByName(m)
	blocks, _, fixed := cutBlocks(m.Graph, shapes, in, nil, func(n *graph.Node) bool { return layers[n.Name()] != nil })
	return blocks, fixed, shapes, layers
}
