package check

import (
	"math"
	"reflect"
	"testing"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

func TestSynthesize(t *testing.T) {
	inputs := []ort.ValueInfo{
		{Name: "img", DType: tensor.Float32, Dims: []int64{-1, 3, -1, 8}, Tensor: true},
		{Name: "ids", DType: tensor.Int64, Dims: []int64{1, 5}, Tensor: true},
		{Name: "mask", DType: tensor.Bool, Dims: []int64{-1, 5}, Tensor: true},
		{Name: "h", DType: tensor.Float16, Dims: []int64{-1, 2}, Tensor: true},
		{Name: "fixed", DType: tensor.Int32, Dims: []int64{4, 2}, Tensor: true},
	}
	a, err := Synthesize(inputs, SynthOptions{Samples: 6, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Synthesize(inputs, SynthOptions{Samples: 6, Seed: 7})
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different data")
	}
	c, _ := Synthesize(inputs, SynthOptions{Samples: 6, Seed: 8})
	if reflect.DeepEqual(a["img"], c["img"]) {
		t.Error("different seeds, same data")
	}
	shapes := map[string][]int64{"img": {6, 3, DefaultDim, 8}, "ids": {6, 5}, "mask": {6, 5}, "h": {6, 2}, "fixed": {4, 2}}
	for name, want := range shapes {
		if !reflect.DeepEqual(a[name].Shape, want) {
			t.Errorf("%s shape %v, want %v", name, a[name].Shape, want)
		}
		if a[name].DType != inputs[slicesIndex(inputs, name)].DType {
			t.Errorf("%s dtype %v", name, a[name].DType)
		}
	}
	// Normal floats: mean near 0, variance near 1 over 6·3·16·8 = 2304 draws.
	f := a["img"].Data.([]float32)
	var sum, sq float64
	for _, v := range f {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean := sum / float64(len(f))
	if math.Abs(mean) > 0.1 || math.Abs(sq/float64(len(f))-mean*mean-1) > 0.1 {
		t.Errorf("img mean %v, var %v", mean, sq/float64(len(f))-mean*mean)
	}
	for _, v := range a["ids"].Data.([]int64) {
		if v != 0 && v != 1 {
			t.Fatalf("ids value %d outside [0, 2)", v)
		}
	}
	trues := 0
	for _, v := range a["mask"].Data.([]bool) {
		if v {
			trues++
		}
	}
	if trues == 0 || trues == 30 {
		t.Errorf("mask has %d trues of 30", trues)
	}
	r, err := Synthesize(inputs[1:2], SynthOptions{IntLow: -3, IntHigh: 100})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := int64(100), int64(-3)
	for _, v := range r["ids"].Data.([]int64) {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < -3 || hi >= 100 || hi-lo < 20 || r["ids"].Shape[0] != DefaultSamples {
		t.Errorf("ids range [%d, %d], shape %v", lo, hi, r["ids"].Shape)
	}

	for _, bad := range []struct {
		in []ort.ValueInfo
		o  SynthOptions
	}{
		{[]ort.ValueInfo{{Name: "s", DType: tensor.Float32, Tensor: true}}, SynthOptions{}},
		{[]ort.ValueInfo{{Name: "u", DType: tensor.Uint8, Dims: []int64{-1}, Tensor: true}}, SynthOptions{IntLow: -1, IntHigh: 1}},
		{inputs, SynthOptions{IntLow: 5, IntHigh: 5}},
		{[]ort.ValueInfo{{Name: "seq", Tensor: false}}, SynthOptions{}},
	} {
		if _, err := Synthesize(bad.in, bad.o); err == nil {
			t.Errorf("%v %+v accepted", bad.in, bad.o)
		}
	}
	if DefaultBatch(inputs) != 1 || DefaultBatch(inputs[:1]) != DefaultBatchSize {
		t.Errorf("DefaultBatch %d %d", DefaultBatch(inputs), DefaultBatch(inputs[:1]))
	}
}

func slicesIndex(in []ort.ValueInfo, name string) int {
	for i, v := range in {
		if v.Name == name {
			return i
		}
	}
	return -1
}
