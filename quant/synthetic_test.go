package quant

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// Synthetic calibration data is made batch by batch: the dataset holds no
// samples (its memory does not grow with their number), any split of the
// samples into batches, in any order, gives the same values, and the
// first input's values are one stream from the seed over every sample.
func TestSyntheticDatasetStreams(t *testing.T) {
	for _, path := range []string{"../fixtures/models/fmnist_resnet_op13.onnx", "../fixtures/models/bert_nano_op14.onnx"} {
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		const n = 10
		d, err := SyntheticDataset(m, n, 7)
		if err != nil {
			t.Fatal(err)
		}
		if d.Inputs != nil || d.Len() != n {
			t.Fatalf("%s: synthetic dataset holds %d arrays, %d samples", path, len(d.Inputs), d.Len())
		}
		whole, err := d.Batch(0, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, split := range [][2]int{{6, 10}, {0, 3}, {3, 6}, {9, 10}, {0, 10}} {
			part, err := d.Batch(split[0], split[1])
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range whole {
				want, err := w.Slice(int64(split[0]), int64(split[1]))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(part[name].Data, want.Data) || !reflect.DeepEqual(part[name].Shape, want.Shape) {
					t.Fatalf("%s: input %q, samples %v differ from the same samples made at once", path, name, split)
				}
			}
		}
		// The first input: one stream from the seed, standard normal
		// floats or integers.
		first := m.Graph.Inputs[0].Name
		rng := rand.New(rand.NewPCG(7, 0x9e3779b97f4a7c15))
		if v, ok := whole[first].Data.([]float32); ok {
			for i := range v {
				if x := float32(rng.NormFloat64()); v[i] != x {
					t.Fatalf("%s: value %d is %v, the seed's stream gives %v", path, i, v[i], x)
				}
			}
		} else if whole[first].DType != tensor.Int64 && whole[first].DType != tensor.Int32 {
			t.Fatalf("%s: input %q is %v", path, first, whole[first].DType)
		}
		few, err := d.first(4)
		if err != nil {
			t.Fatal(err)
		}
		got, err := few.Batch(0, 4)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range whole {
			want, _ := w.Slice(0, 4)
			if few.Len() != 4 || !reflect.DeepEqual(got[name].Data, want.Data) {
				t.Fatalf("%s: the first 4 samples of %q differ", path, name)
			}
		}
	}
}
