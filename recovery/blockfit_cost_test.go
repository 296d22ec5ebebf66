package recovery

import (
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
)

// The block fit's cost: without the output term every node belongs to
// one block, so a step costs one forward pass of the model; with it,
// each inner block runs through the rest of the model, about (n + 1) / 2
// passes for n blocks of even size (the ViT's 8 blocks are even: 4.4),
// less when the early blocks are the heavy ones (the ResNet's 3 blocks
// of falling resolution: 1.9).
func TestFitMACs(t *testing.T) {
	for _, tc := range []struct {
		model    string
		min, max float64 // the output term's cost over the fit alone
	}{
		{"fmnist_vit_op17.onnx", 4, 4.5},
		{"fmnist_resnet_op17.onnx", 1.5, 2.2},
	} {
		m, err := graph.Load("../fixtures/models/" + tc.model)
		if err != nil {
			t.Fatal(err)
		}
		src, err := calib.Open("../fixtures/data/fmnist_calib_x.npy", m, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		whole, err := SampleMACs(m, src)
		if err != nil {
			t.Fatal(err)
		}
		own, err := FitMACs(m, m, src, false)
		if err != nil {
			t.Fatal(err)
		}
		out, err := FitMACs(m, m, src, true)
		if err != nil {
			t.Fatal(err)
		}
		if own != whole {
			t.Errorf("%s: the fit's blocks count %d MACs per sample, the model %d: a node is missed or counted twice", tc.model, own, whole)
		}
		if r := float64(out) / float64(own); r < tc.min || r > tc.max {
			t.Errorf("%s: the output term costs %.2f times the fit alone (%d / %d), want %.1f-%.1f", tc.model, r, out, own, tc.min, tc.max)
		}
	}
}
