package pruner

import (
	"context"
	"errors"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/progress/progresstest"
	"github.com/pare-dev/pare/prune"
)

// A signal during the least-squares reconstruction stops it between
// two layers (each layer's rows are read under the context): cancelled
// after the second layer's report, the prune returns the context's
// error and refits no third layer.
func TestReconstructionStopsBetweenLayers(t *testing.T) {
	m, err := graph.Load(fixtures + "models/fmnist_resnet_op17.onnx")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel, reported := progresstest.CancelAt("reconstruction", 1)
	defer cancel()
	cfg := Config{Settings: searchSettings(0.5), Calib: fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, Allocate: "global"}
	if _, err := RunSteps(ctx, m, prune.Options{}, cfg, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled prune: %v; want context.Canceled", err)
	}
	if len(*reported) != 2 || (*reported)[1] != 1 {
		t.Errorf("reconstruction reports %v: want 0 and 1, then the stop", *reported)
	}
}
