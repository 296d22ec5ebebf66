package recovery

import (
	"math"
	"slices"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// An inner block extended to the model output keeps its own matched
// values, adds the output, runs every node after it, and trains its own
// weights alone: the net built from it has no weight of a later block.
func TestWithOutputTrainsBlockOnly(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_vit_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4
	blocks, _, shapes, layers := cutFixture(t, m, []int64{batch, 1, 28, 28})
	b := blocks[1] // the first MLP
	b.outs = blockOuts(m.Graph, shapes, b, layers, func(l *calib.Layer) []int { return seqRows(l.Out()) })
	out := m.Graph.Outputs[0].Name
	ot := &outputTargets{out: blockOut{value: out, ref: out, axis: 1, rows: seqRows(10)}, width: 10, ms: 1}
	ext, train := withOutput(m.Graph, b, ot)
	if len(ext.outs) != len(b.outs)+1 || ext.outs[len(ext.outs)-1].value != out {
		t.Fatalf("extended block matches %v, want %v and the output %s", ext.outs, b.outs, out)
	}
	if last := ext.nodes[len(ext.nodes)-1]; last != m.Graph.Nodes[len(m.Graph.Nodes)-1] {
		t.Errorf("extended block ends at %s, not at the graph's last node", last.Name())
	}
	own := map[string]bool{}
	for _, n := range b.nodes {
		for _, in := range n.Proto.Input {
			if m.Graph.Initializer(in) != nil {
				own[in] = true
			}
		}
	}
	if len(train) == 0 || len(train) != len(own) {
		t.Fatalf("trainable %v, want the block's own initializers %v", train, own)
	}
	s, ok := shapes.Of(b.input)
	if !ok {
		t.Fatalf("no shape for the block input %s", b.input)
	}
	dims, size := make([]int64, len(s.Dims)), int64(1)
	for i, d := range s.Dims {
		dims[i], _ = d.Value()
		size *= dims[i]
	}
	x, err := tensor.New(dims, make([]float32, size))
	if err != nil {
		t.Fatal(err)
	}
	scales := make([]float64, len(ext.outs))
	for i := range scales {
		scales[i] = 1
	}
	sub, err := blockModel(m, ext, x, scales, nil, grad.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net, err := grad.BuildInputs(sub, map[string][]int64{b.input: x.Shape})
	if err != nil {
		t.Fatal(err)
	}
	all := len(net.WeightNames())
	net.TrainOnly(func(n string) bool { return train[n] })
	names := net.WeightNames()
	t.Logf("block %s→%s: %d of the %d weights after it train", b.input, b.end, len(names), all)
	if len(names) == 0 || len(names) >= all {
		t.Fatalf("%d of %d weights train, want the block's own alone", len(names), all)
	}
	for _, n := range names {
		if !own[n] {
			t.Errorf("weight %s of a later block trains", n)
		}
	}
}

// The mixed targets' mean squared error over the concatenation is
// (1 − w) × the block's own relative MSE + w × the output's.
func TestMixTargets(t *testing.T) {
	const batch, w = 2, 0.3
	own := [][]float32{{1, 2, 3, 4}}      // 2 per sample, already scaled
	outRefs := [][]float32{{4, 0, -2, 2}} // 2 per sample
	ms := (16.0 + 0 + 4 + 4) / 4
	ot := &outputTargets{refs: outRefs, width: 2, ms: ms}
	mixed, sc := mixTargets(own, []float64{1}, ot, w, batch)
	// A prediction off by 1 on every own value and by 2 on every output
	// value: own relative MSE 1, output relative MSE 4 / ms.
	pred := []float64{2, 3, 4 + 2, 0 + 2, 4, 5, -2 + 2, 2 + 2}
	var got float64
	for i, v := range mixed[0] {
		var p float64
		switch i % 4 {
		case 0, 1:
			p = pred[i] * sc[0]
		default:
			p = pred[i] * sc[1]
		}
		d := p - float64(v)
		got += d * d
	}
	got /= float64(len(mixed[0]))
	want := (1-w)*1 + w*4/ms
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("mixed MSE %.6f, want %.6f", got, want)
	}
	if len(sc) != 2 || !slices.Equal(mixed[0][:2], []float32{float32(1 * sc[0]), float32(2 * sc[0])}) {
		t.Errorf("scales %v, mixed %v", sc, mixed[0])
	}
}
