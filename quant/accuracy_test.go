package quant

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// maxAccDrop is the largest accuracy loss (in points) of int8 QDQ on the
// trained CNN that QUANT.md accepts ("within a few tenths of a point").
const maxAccDrop = 0.5

// accuracy runs m over x in batches and returns the top-1 accuracy
// against labels y.
func accuracy(t *testing.T, m *graph.Model, x tensor.Dense, y []int64) float64 {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := m.Graph.Inputs[0].Name
	var logits []float32
	const batch = 500
	for i := int64(0); i < x.Rows(); i += batch {
		xb, _ := x.Slice(i, min(i+batch, x.Rows()))
		out, err := s.Run(context.Background(), map[string]tensor.Dense{name: xb}, nil)
		if err != nil {
			t.Fatal(err)
		}
		logits = append(logits, float32s(t, out[0])...)
	}
	return 100 * check.Top1(logits, y[:x.Rows()])
}

func TestQDQInt8AccuracyOnTrainedCNN(t *testing.T) {
	x, err := tensor.ReadNpyFile(filepath.Join(fixturesDir, "data/fmnist_test_x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	yd, err := tensor.ReadNpyFile(filepath.Join(fixturesDir, "data/fmnist_test_y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := yd.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fmnist_resnet_op13", "fmnist_resnet_bn_op17"} {
		for _, calib := range []string{CalibMinMax, CalibPercentile} {
			t.Run(name+"/"+calib, func(t *testing.T) {
				path := filepath.Join(fixturesDir, "models", name+".onnx")
				m, err := graph.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				floatAcc := accuracy(t, m, x, y)
				cal, err := LoadDataset(filepath.Join(fixturesDir, "data/fmnist_calib_x.npy"), m, 256)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Quantize(context.Background(), m, Options{Format: FormatQDQ, Calib: &cal, CalibSamples: 256, Calibrate: calib})
				if err != nil {
					t.Fatal(err)
				}
				qAcc := accuracy(t, m, x, y)
				t.Logf("float %.2f%%, int8 QDQ (%s, %d layers, %d activations) %.2f%%", floatAcc, calib, len(rep.Layers), rep.Activation, qAcc)
				if floatAcc-qAcc > maxAccDrop {
					t.Errorf("int8 QDQ accuracy %.2f%% is %.2f points below float %.2f%%", qAcc, floatAcc-qAcc, floatAcc)
				}
			})
		}
	}
}
