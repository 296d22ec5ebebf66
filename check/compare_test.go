package check

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

var ctx = context.Background()

func session(t *testing.T, m *onnx.ModelProto) *ort.Session {
	t.Helper()
	s, err := ort.NewSession(orttest.Bytes(t, m), ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func synth(t *testing.T, s *ort.Session, n int64) Source {
	t.Helper()
	in, err := Synthesize(s.Inputs(), SynthOptions{Samples: n, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	src, err := FromArrays(in, "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestCompareSelfPasses(t *testing.T) {
	ref, cand := session(t, orttest.MLP()), session(t, orttest.MLP())
	res, err := Compare(ctx, ref, cand, synth(t, ref, 20), Options{Batch: 7, Thresholds: DefaultThresholds()})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || len(res.Outputs) != 1 || res.Samples != 20 || res.Batch != 7 {
		t.Fatalf("%+v", res)
	}
	m := res.Outputs[0]
	if m.Name != "logits" || m.MaxAbs != 0 || m.RelL2 != 0 || m.Cosine != 1 || *m.Top1 != 1 || m.Rows != 20 ||
		!reflect.DeepEqual(m.Shape, []int64{20, 3}) || m.DType != "float32" {
		t.Errorf("%+v", m)
	}
	if len(res.Gates) != 1 || res.Gates[0].Gate != GateAllClose || !res.Gates[0].Pass {
		t.Errorf("gates %+v", res.Gates)
	}
}

func TestComparePerturbedFails(t *testing.T) {
	ref := session(t, orttest.MLP())
	cand := session(t, orttest.Perturb(orttest.MLP(), "W2", 0.05))
	res, err := Compare(ctx, ref, cand, synth(t, ref, 16), Options{Thresholds: DefaultThresholds()})
	if !errors.Is(err, ErrFailed) || res == nil || res.Pass {
		t.Fatalf("err %v, res %+v", err, res)
	}
	if !strings.Contains(err.Error(), `allclose on "logits"`) {
		t.Errorf("error %q does not name the gate", err)
	}
	m := res.Outputs[0]
	// Scaling W2 by 1.05 scales logits minus b2 by 1.05: relative error
	// about 5%, cosine still close to 1.
	if !(m.RelL2 > 0.01 && m.RelL2 < 0.06 && m.Cosine > 0.99) {
		t.Errorf("metrics %+v", m.Metrics)
	}
	// The same pair passes looser gates.
	res, err = Compare(ctx, ref, cand, synth(t, ref, 16), Options{Thresholds: Thresholds{MinCos: new(0.99), MinTop1: new(0.5)}})
	if err != nil || !res.Pass || len(res.Gates) != 2 {
		t.Errorf("loose gates: %v %+v", err, res)
	}
}

func TestCompareNaNCandidate(t *testing.T) {
	ref := session(t, orttest.MLP())
	cand := session(t, orttest.Perturb(orttest.MLP(), "W2", float32(math.NaN())))
	th := Thresholds{AllClose: &AllClose{ATol: 1e9}, MinCos: new(-1.0), MinTop1: new(0.0)}
	res, err := Compare(ctx, ref, cand, synth(t, ref, 4), Options{Thresholds: th})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err %v", err)
	}
	for _, g := range res.Gates {
		if g.Pass {
			t.Errorf("%s passed with NaN outputs", g.Gate)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result with NaN does not marshal: %v", err)
	}
}

func TestCompareAccuracy(t *testing.T) {
	ref := session(t, orttest.MLP())
	cand := session(t, orttest.Perturb(orttest.MLP(), "W2", -2)) // flips the sign of W2: predictions change
	src := synth(t, ref, 12)
	feed, _ := src.Batch(0, 12)
	out, err := ref.Run(ctx, feed, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Labels are the reference's own predictions: reference accuracy 100%.
	f, _ := out[0].Float64s()
	labels := make([]int64, 12)
	for i := range labels {
		labels[i] = argmax(f[i*3 : i*3+3])
	}
	res, err := Compare(ctx, ref, cand, src, Options{Batch: 5, Labels: labels, Thresholds: Thresholds{MaxAccDrop: new(5.0)}})
	if !errors.Is(err, ErrFailed) || res.Accuracy == nil {
		t.Fatalf("err %v res %+v", err, res)
	}
	a := res.Accuracy
	if a.Ref != 1 || a.Labels != 12 || a.Output != "logits" || !same(float64(a.DropPoints), 100*(1-float64(a.Cand))) || a.Cand >= 1 {
		t.Errorf("accuracy %+v", a)
	}
	if top1 := *res.Outputs[0].Top1; !same(float64(top1), float64(a.Cand)) {
		t.Errorf("top1 %v should equal candidate accuracy %v with self labels", top1, a.Cand)
	}
	if _, err := Compare(ctx, ref, cand, src, Options{Labels: labels[:5]}); !errors.Is(err, ErrData) {
		t.Errorf("too few labels: %v", err)
	}
	if _, err := Compare(ctx, ref, cand, src, Options{Thresholds: Thresholds{MaxAccDrop: new(1.0)}}); !errors.Is(err, ErrData) {
		t.Errorf("max-acc-drop without labels: %v", err)
	}
}

func TestCompareIncompatible(t *testing.T) {
	ref := session(t, orttest.MLP())
	renamed := orttest.MLP()
	renamed.Graph.Input[0].Name = proto.String("y")
	renamed.Graph.Node[0].Input[0] = "y"
	otherOut := orttest.MLP()
	otherOut.Graph.Output[0].Name = proto.String("mm2")
	wider := orttest.MLP()
	wider.Graph.Node[4].OpType = proto.String("Concat")
	wider.Graph.Node[4].Input = []string{"mm2", "mm2"}
	wider.Graph.Node[4].Attribute = append(wider.Graph.Node[4].Attribute, orttest.IntAttr("axis", 1))
	for name, m := range map[string]*onnx.ModelProto{"input name": renamed, "output name": otherOut, "output shape": wider} {
		cand := session(t, m)
		if _, err := Compare(ctx, ref, cand, synth(t, ref, 4), Options{}); !errors.Is(err, ErrIncompatible) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSources(t *testing.T) {
	dir := t.TempDir()
	ref := session(t, orttest.MLP())
	x64 := make([]float64, 10*4)
	for i := range x64 {
		x64[i] = math.Sin(float64(i))
	}
	d, _ := tensor.New([]int64{10, 4}, x64)
	npy := filepath.Join(dir, "x.npy")
	if err := tensor.WriteNpyFile(npy, d); err != nil {
		t.Fatal(err)
	}
	src, err := FromNpy(npy, ref.Inputs())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := src.Batch(2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if x := b["x"]; x.DType != tensor.Float32 || !reflect.DeepEqual(x.Shape, []int64{3, 4}) || x.Data.([]float32)[0] != float32(x64[8]) {
		t.Errorf("batch %v", x)
	}
	res, err := Compare(ctx, ref, ref, src, Options{Batch: 4})
	if err != nil || res.Samples != 10 || res.Inputs != npy {
		t.Errorf("npy compare: %v %+v", err, res)
	}

	npz := filepath.Join(dir, "x.npz")
	tensor.WriteNpzFile(npz, map[string]tensor.Dense{"x": d, "y": d}, true)
	if src, err := FromNpz(npz, ref.Inputs()); err != nil || src.Rows() != 10 {
		t.Errorf("npz: %v", err)
	}
	single := filepath.Join(dir, "single.npz")
	tensor.WriteNpzFile(single, map[string]tensor.Dense{"arr_0": d}, false)
	if src, err := FromNpz(single, ref.Inputs()); err != nil || src.Rows() != 10 {
		t.Errorf("single-array npz: %v", err)
	}

	wrong, _ := tensor.New([]int64{2, 5}, make([]float32, 10))
	wrongPath := filepath.Join(dir, "wrong.npy")
	tensor.WriteNpyFile(wrongPath, wrong)
	ints, _ := tensor.New([]int64{2, 4}, make([]int64, 8))
	intsPath := filepath.Join(dir, "ints.npy")
	tensor.WriteNpyFile(intsPath, ints)
	two := filepath.Join(dir, "two.npz")
	tensor.WriteNpzFile(two, map[string]tensor.Dense{"a": d, "b": d}, false)
	twoInputs := []ort.ValueInfo{ref.Inputs()[0], {Name: "z", DType: tensor.Float32, Dims: []int64{-1}, Tensor: true}}
	for name, f := range map[string]func() (Source, error){
		"wrong width":  func() (Source, error) { return FromNpy(wrongPath, ref.Inputs()) },
		"two inputs":   func() (Source, error) { return FromNpy(npy, twoInputs) },
		"missing name": func() (Source, error) { return FromNpz(two, ref.Inputs()) },
	} {
		if _, err := f(); !errors.Is(err, ErrData) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Integer data for a float input converts; the reverse is refused.
	if _, err := FromNpy(intsPath, ref.Inputs()); err != nil {
		t.Errorf("int data for float input: %v", err)
	}
	intInput := []ort.ValueInfo{{Name: "ids", DType: tensor.Int64, Dims: []int64{-1, 4}, Tensor: true}}
	if _, err := FromNpy(npy, intInput); !errors.Is(err, ErrData) {
		t.Errorf("float data for int input: %v", err)
	}
	if _, err := FromNpy(filepath.Join(dir, "missing.npy"), ref.Inputs()); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("missing file: %v", err)
	}

	labels, _ := tensor.New([]int64{3, 1}, []int32{0, 2, 1})
	lp := filepath.Join(dir, "y.npy")
	tensor.WriteNpyFile(lp, labels)
	if got, err := LoadLabels(lp); err != nil || !reflect.DeepEqual(got, []int64{0, 2, 1}) {
		t.Errorf("labels %v %v", got, err)
	}
	if _, err := LoadLabels(npy); !errors.Is(err, ErrData) {
		t.Errorf("float labels: %v", err)
	}
}

// Top1 takes the first of tied maxima, as numpy does, and never counts a
// row holding a NaN as right.
func TestTop1(t *testing.T) {
	logits := []float32{
		0.1, 0.9, 0.0, // 1: right
		0.5, 0.5, 0.0, // tie → 0: right
		0.2, 0.3, 0.4, // 2, label 0: wrong
		float32(math.NaN()), 0.0, 0.0, // NaN, label 0: never right
	}
	if got := Top1(logits, []int64{1, 0, 0, 0}); got != 0.5 {
		t.Fatalf("Top1 = %v, want 0.5", got)
	}
	if got := Top1(nil, nil); got != 0 {
		t.Fatalf("Top1 of no labels = %v, want 0", got)
	}
	if got := Predictions(logits, 4); !slices.Equal(got, []int64{1, 0, 2, -1}) {
		t.Fatalf("Predictions = %v, want [1 0 2 -1]", got)
	}
	// A model agrees with itself on every row without a NaN.
	if got := Top1(logits, Predictions(logits, 4)); got != 0.75 {
		t.Fatalf("self agreement = %v, want 0.75", got)
	}
}
