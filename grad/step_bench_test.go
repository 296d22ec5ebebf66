package grad

import (
	"testing"

	"github.com/pare-dev/pare/graph"
)

// BenchmarkStep: one training step (forward, loss, gradients of every
// weight) of a whole trained model at the block fit's batch of 64, the
// unit the fit's and --recover kd's CPU is made of. Reference for a
// change: the same benchmark on the parent commit, in the same run.
//
//	go test -run '^$' -bench Step -benchtime 20x ./grad
func BenchmarkStep(b *testing.B) {
	const batch = 64
	for _, model := range []string{"fmnist_resnet_bn_op17", "fmnist_mobilenet_op17", "fmnist_densenet_op17", "fmnist_regnet_op17", "fmnist_vit_op17"} {
		b.Run(model, func(b *testing.B) {
			m, err := graph.Load(models + model + ".onnx")
			if err != nil {
				b.Fatal(err)
			}
			net, err := Build(m, batch)
			if err != nil {
				b.Fatal(err)
			}
			o, err := NewObjective(net, KL)
			if err != nil {
				b.Fatal(err)
			}
			x := testRows(b, 0, batch)
			ref := make([]float32, batch*10) // uniform logits: a loss away from its minimum
			for b.Loop() {
				if _, err := o.Step(x, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
