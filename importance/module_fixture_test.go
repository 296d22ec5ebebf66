package importance_test

import (
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// The trained Fashion-MNIST ResNet: the stem conv, the two strided
// shortcut convs, the block convs; each group takes its first producer's
// module.
func TestModuleSplitResNet(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_bn_op13.onnx")
	if err != nil {
		t.Skip(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mo := importance.NewModule(a)
	got := map[string]string{}
	for _, g := range a.Prunable() {
		got[g.Name] = mo.Modules[g.ID]
	}
	want := map[string]string{
		"/stem/stem.0/Conv":           "stem",
		"/layers/layers.0/conv1/Conv": "conv",
		"/layers/layers.1/conv1/Conv": "conv",
		"/layers/layers.1/conv2/Conv": "conv",
		"/layers/layers.2/conv1/Conv": "conv",
		"/layers/layers.2/conv2/Conv": "conv",
	}
	for name, mod := range want {
		if got[name] != mod {
			t.Errorf("group %s: module %q, want %q (all: %v)", name, got[name], mod, got)
		}
	}
}
