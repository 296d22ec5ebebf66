package ort

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

func TestCaptureModel(t *testing.T) {
	m := orttest.MLP()
	before := orttest.Bytes(t, m)
	// "pre" has a declared type, "hidden" none: both must work.
	m.Graph.ValueInfo = []*onnx.ValueInfoProto{orttest.Value("pre", orttest.Float, "N", 8)}
	c := CaptureModel(m, []string{"hidden", "pre", "logits", "hidden", "b2", "x"})
	m.Graph.ValueInfo = nil
	if !reflect.DeepEqual(orttest.Bytes(t, m), before) {
		t.Fatal("CaptureModel changed its input")
	}
	var outNames []string
	for _, o := range c.Graph.Output {
		outNames = append(outNames, o.GetName())
	}
	if !reflect.DeepEqual(outNames, []string{"logits", "hidden", "pre", "b2", "x"}) {
		t.Fatalf("outputs %v", outNames)
	}
	if c.Graph.Output[1].Type != nil {
		t.Error("hidden got a type out of nowhere")
	}
	if c.Graph.Output[2].GetType().GetTensorType().GetElemType() != orttest.Float {
		t.Error("pre lost its value_info type")
	}

	s := openSession(t, c, Options{})
	var infos []string
	for _, o := range s.Outputs() {
		infos = append(infos, o.String())
	}
	// onnxruntime infers the element type and rank of the untyped output.
	want := []string{"logits: float32[-1 3]", "hidden: float32[-1 8]", "pre: float32[-1 8]", "b2: float32[3]", "x: float32[-1 4]"}
	if !reflect.DeepEqual(infos, want) {
		t.Errorf("outputs %v, want %v", infos, want)
	}
	x := inputX(3)
	hidden, logits := mlpRef(t, orttest.MLP(), x.Data.([]float32), 3)
	out, err := s.Run(ctx, map[string]tensor.Dense{"x": x}, []string{"hidden", "logits", "x"})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "hidden", out[0], hidden, 1e-5)
	assertClose(t, "logits", out[1], logits, 1e-5)
	if !reflect.DeepEqual(out[2].Data, x.Data) {
		t.Error("captured input differs")
	}

	// A scalar intermediate with no declared type.
	sm := proto.Clone(orttest.MLP()).(*onnx.ModelProto)
	sm.Graph.Node = append(sm.Graph.Node, orttest.Node("ReduceMax", []string{"hidden"}, []string{"peak"}, orttest.IntAttr("keepdims", 0)))
	ss := openSession(t, CaptureModel(sm, []string{"peak"}), Options{})
	out, err = ss.Run(ctx, map[string]tensor.Dense{"x": x}, []string{"peak"})
	if err != nil {
		t.Fatal(err)
	}
	peak := float32(0)
	for _, v := range hidden {
		peak = max(peak, v)
	}
	if out[0].Rank() != 0 {
		t.Errorf("peak is %v", out[0])
	}
	assertClose(t, "peak", out[0], []float32{peak}, 1e-6)

	// Unknown names fail at session creation, naming the value.
	_, err = NewSession(orttest.Bytes(t, CaptureModel(orttest.MLP(), []string{"nope"})), Options{})
	if !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown capture: %v", err)
	}
}

func TestRunBatched(t *testing.T) {
	s := openSession(t, CaptureModel(orttest.MLP(), []string{"hidden"}), Options{})
	x := inputX(10)
	hidden, logits := mlpRef(t, orttest.MLP(), x.Data.([]float32), 10)
	for _, b := range []int64{1, 3, 4, 10, 64} {
		out, err := s.RunBatched(ctx, map[string]tensor.Dense{"x": x}, []string{"logits", "hidden"}, b)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if !reflect.DeepEqual(out[0].Shape, []int64{10, 3}) || !reflect.DeepEqual(out[1].Shape, []int64{10, 8}) {
			t.Fatalf("batch %d: shapes %v %v", b, out[0].Shape, out[1].Shape)
		}
		assertClose(t, "logits", out[0], logits, 1e-5)
		assertClose(t, "hidden", out[1], hidden, 1e-5)
	}
	if _, err := s.RunBatched(ctx, map[string]tensor.Dense{"x": x}, nil, 0); err == nil {
		t.Error("batch 0 accepted")
	}
	two := orttest.Model(
		[]*onnx.NodeProto{orttest.Node("Add", []string{"a", "b"}, []string{"c"})}, nil,
		[]*onnx.ValueInfoProto{orttest.Value("a", orttest.Float, "N"), orttest.Value("b", orttest.Float, "N")},
		[]*onnx.ValueInfoProto{orttest.Value("c", orttest.Float, "N")},
	)
	ts := openSession(t, two, Options{})
	a, _ := tensor.New([]int64{3}, []float32{1, 2, 3})
	b, _ := tensor.New([]int64{2}, []float32{1, 2})
	if _, err := ts.RunBatched(ctx, map[string]tensor.Dense{"a": a, "b": b}, nil, 2); !errors.Is(err, ErrInput) {
		t.Errorf("mismatched rows: %v", err)
	}
}

func TestTime(t *testing.T) {
	s := openSession(t, orttest.MLP(), Options{})
	lat, err := s.Time(ctx, map[string]tensor.Dense{"x": inputX(8)}, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	if lat.Runs != 20 || lat.Warmup != 3 || lat.Threads != 1 {
		t.Errorf("latency %+v", lat)
	}
	if !(lat.Min > 0 && lat.Min <= lat.Median && lat.Median <= lat.P90 && lat.P90 <= lat.Max && lat.Mean > 0) {
		t.Errorf("inconsistent latency %+v", lat)
	}
	if _, err := s.Time(ctx, map[string]tensor.Dense{"x": inputX(8)}, 0, 0); err == nil {
		t.Error("0 runs accepted")
	}
	if _, err := s.Time(ctx, map[string]tensor.Dense{"y": inputX(8)}, 0, 1); !errors.Is(err, ErrInput) {
		t.Errorf("wrong input: %v", err)
	}
}

func TestSummarise(t *testing.T) {
	// 1..10 ms: median 5.5, nearest-rank p90 is the 9th value, mean 5.5.
	var ts []time.Duration
	for i := 10; i >= 1; i-- {
		ts = append(ts, time.Duration(i)*time.Millisecond)
	}
	l := Summarise(ts, 4, 2)
	if l.Median != 5500*time.Microsecond || l.P90 != 9*time.Millisecond || l.Mean != 5500*time.Microsecond ||
		l.Min != time.Millisecond || l.Max != 10*time.Millisecond || l.Threads != 4 || l.Warmup != 2 || l.Runs != 10 {
		t.Errorf("%+v", l)
	}
	one := Summarise([]time.Duration{7}, 1, 0)
	if one.Median != 7 || one.P90 != 7 {
		t.Errorf("%+v", one)
	}
}
