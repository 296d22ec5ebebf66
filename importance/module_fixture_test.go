package importance_test

import (
	"context"
	"fmt"
	"math"
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
		t.Fatal(err)
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

// Each module loses its share: at ratio 0.3 the stem module (16
// channels) loses round(4.8) = 5 and the conv module round(0.3·N).
func TestModulePlanSharesPerModule(t *testing.T) {
	m, err := graph.Load("../fixtures/models/fmnist_resnet_bn_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mo := importance.NewModule(a)
	s := prune.Settings{Criterion: "module", Scope: "global", Target: "channels", Ratio: 0.3, MaxLayerRatio: 0.8,
		Options: &prune.CriterionOptions{}}
	plan, err := mo.Plan(context.Background(), a, s)
	if err != nil {
		t.Fatal(err)
	}
	size, removed := map[string]int{}, map[string]int{}
	for _, g := range plan.Groups {
		if g.Frozen {
			continue
		}
		mod := plan.Settings.Options.Modules[fmt.Sprint(g.ID)]
		size[mod] += g.Size
		removed[mod] += g.Size - len(g.Kept)
	}
	if size["stem"] != 16 || removed["stem"] != 5 {
		t.Errorf("stem: %d of %d removed, want 5 of 16", removed["stem"], size["stem"])
	}
	if want := int(math.Round(0.3 * float64(size["conv"]))); removed["conv"] != want {
		t.Errorf("conv: %d of %d removed, want %d", removed["conv"], size["conv"], want)
	}
}
