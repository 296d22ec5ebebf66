package pruner

import (
	"context"
	"errors"
	"testing"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

const fixtures = "../fixtures/"

// testAccuracy is m's top-1 accuracy on the Fashion-MNIST test samples.
func testAccuracy(t *testing.T, m *graph.Model) float64 {
	t.Helper()
	y, err := readFixture(t, "data/fmnist_test_y.npy").Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return check.Top1(testOutputs(t, m), y)
}

// testOutputs runs m on the 1000 Fashion-MNIST test images.
func testOutputs(t *testing.T, m *graph.Model) []float32 {
	t.Helper()
	x := readFixture(t, "data/fmnist_test_x.npy")
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outs, err := s.RunBatched(context.Background(), map[string]tensor.Dense{s.Inputs()[0].Name: x}, nil, 250)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := outs[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return logits
}

func readFixture(t *testing.T, p string) tensor.Dense {
	t.Helper()
	f, err := tensor.OpenNpy(fixtures + p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// On the trained Fashion-MNIST ResNet (BatchNorm), half the parameters
// removed by magnitude: sharing the removal by measured sensitivity
// keeps far more accuracy than one global ranking of the same scores,
// at the same parameter count (within the 2% landing tolerance).
func TestSensitivityAllocationBeatsGlobalRanking(t *testing.T) {
	run := func(allocate string) (acc, removed float64, out *Outcome) {
		return pruneFixture(t, "fmnist_resnet_bn_op17.onnx", Config{
			Settings: prune.Settings{Criterion: "magnitude", Target: "params", Ratio: 0.5, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
			Allocate: allocate,
		})
	}
	gAcc, gRm, _ := run("global")
	sAcc, sRm, out := run("sensitivity")
	t.Logf("global: %.1f%% removed, accuracy %.3f; sensitivity: %.1f%% removed, accuracy %.3f", 100*gRm, gAcc, 100*sRm, sAcc)
	if sRm < 0.48 || sRm > 0.52 || gRm < 0.48 {
		t.Fatalf("removed %.3f (sensitivity) and %.3f (global), asked 0.5", sRm, gRm)
	}
	if sAcc < gAcc+0.10 {
		t.Errorf("sensitivity allocation %.3f does not beat global ranking %.3f by 10 points", sAcc, gAcc)
	}
	if len(out.Sensitivity) < 4 {
		t.Errorf("%d groups measured", len(out.Sensitivity))
	}
	// The ratios differ between groups: that is the allocation.
	ratios := map[float64]bool{}
	for _, g := range out.Plan.Groups {
		if !g.Frozen {
			ratios[float64(len(g.Kept))/float64(g.Size)] = true
		}
	}
	if len(ratios) < 2 {
		t.Errorf("one ratio for every group: %v", ratios)
	}
}

// Sensitivity allocation measures on data, and zeroth allocates by
// itself: both refusals are invalid options.
func TestSensitivityAllocationRefusals(t *testing.T) {
	for _, c := range []struct{ crit, calib, alloc string }{
		{"magnitude", "", "sensitivity"},
		{"zeroth", fixtures + "data/fmnist_calib_x.npy", "sensitivity"},
		{"magnitude", "", "best"},
	} {
		m, err := graph.Load(fixtures + "models/fmnist_resnet_bn_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(context.Background(), m, an, nil, Config{
			Settings: prune.Settings{Criterion: c.crit, Target: "channels", Ratio: 0.5, MaxLayerRatio: 0.8, Seed: 1},
			Calib:    c.calib, Allocate: c.alloc,
		})
		if !errors.Is(err, prune.ErrInvalidOption) {
			t.Errorf("%+v: %v, want an invalid option", c, err)
		}
	}
}
