package prune

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// TestChannelSetsResidualStream: on a GPT export, the channel set that
// holds the token embedding is the residual stream: every LayerNorm's
// input and output on the last axis, the token table and position
// embedding as constants, nothing of an MLP's hidden width; the
// analysis leaves the model as it was.
func TestChannelSetsResidualStream(t *testing.T) {
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "gpt_nano_op17.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := ChannelSets(m)
	if err != nil {
		t.Fatal(err)
	}
	if after, err := m.Marshal(); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the analysis changed the model (%v)", err)
	}
	var stream *graph.ChannelSet
	for i, s := range sets {
		if slices.Contains(s.Axes, graph.ValueAxis{Value: "/tok/Gather_output_0", Axis: 2}) {
			stream = &sets[i]
		}
	}
	if stream == nil {
		t.Fatal("no channel set holds the token embedding")
	}
	want := []graph.ValueAxis{{Value: "tok.weight", Axis: 1}, {Value: "pos", Axis: 2}, {Value: "/Add_output_0", Axis: 2}}
	lns := 0
	for _, n := range m.Graph.Nodes {
		switch n.Op() {
		case "LayerNormalization":
			lns++
			want = append(want, graph.ValueAxis{Value: n.Input(0), Axis: 2}, graph.ValueAxis{Value: n.Output(0), Axis: 2},
				graph.ValueAxis{Value: n.Input(1), Axis: 0})
		}
	}
	// fc1's output is the MLP width, not the stream.
	hidden := 0
	for _, v := range []string{"/blocks.0/fc1/MatMul_output_0", "/blocks.0/fc1/Add_output_0", "/blocks.1/fc1/Add_output_0"} {
		if slices.Contains(stream.Axes, graph.ValueAxis{Value: v, Axis: 2}) {
			t.Errorf("%s (the MLP width) is in the stream's set", v)
		}
		for _, s := range sets {
			if slices.Contains(s.Axes, graph.ValueAxis{Value: v, Axis: 2}) {
				hidden++
			}
		}
	}
	if hidden != 3 {
		t.Errorf("%d of 3 MLP hidden values in a channel set", hidden)
	}
	if lns != 5 || stream.Channels != 64 {
		t.Fatalf("%d LayerNorms, %d channels in the stream", lns, stream.Channels)
	}
	for _, w := range want {
		if !slices.Contains(stream.Axes, w) {
			t.Errorf("the stream's set lacks %v", w)
		}
	}
}
