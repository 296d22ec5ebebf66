package grad

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// The mixed loss (an MSE over the first values of each row, a KL over
// the rest in runs of logits) has the gradient of its finite
// differences, and its held-out Distance is the loss a step reports.
// The trained ResNet's 10 logits are split 4 + 2 runs of 3 for it.
func TestMixedLossMatchesFiniteDifferences(t *testing.T) {
	const batch = 4
	path := models + "fmnist_resnet_bn_op17.onnx"
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := testRows(t, 0, batch)
	ref := ortOutputs(t, path, testRows(t, batch, batch), batch)
	net, err := Build(m, batch)
	if err != nil {
		t.Fatal(err)
	}
	mx := Mixed{Head: 4, Classes: 3, Weight: 0.4}
	o, err := NewMixedObjective(net, mx)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := o.Step(x, ref)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if d := mx.Distance(out, ref, batch); math.Abs(d-loss) > 1e-9+1e-6*math.Abs(loss) {
		t.Errorf("step loss %.10g, Distance %.10g", loss, d)
	}
	if loss <= 0 {
		t.Fatalf("loss %g toward other images' outputs, want above 0", loss)
	}
	for _, name := range []string{"stem.0.weight", "layers.2.bn1.weight", "fc.weight", "fc.bias"} {
		data := net.Data(name)
		if data == nil {
			t.Fatalf("no weight %s", name)
		}
		if _, err := o.Step(x, ref); err != nil {
			t.Fatal(err)
		}
		g := append([]float64(nil), o.Grad(name)...)
		for _, i := range []int{0, len(data) / 2, len(data) - 1} {
			fd := finiteDifference(t, func() (float64, error) { return o.Step(x, ref) }, data, i)
			if math.Abs(fd-g[i]) > 1e-5+1e-3*math.Abs(fd) {
				t.Errorf("%s[%d]: gradient %.8g, finite difference %.8g", name, i, g[i], fd)
			}
		}
	}
	if _, err := NewMixedObjective(net, Mixed{Head: 3, Classes: 3, Weight: 0.4}); err == nil {
		t.Error("a second objective on the same net was accepted")
	}
}
