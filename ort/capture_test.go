package ort

import (
	"errors"
	"reflect"
	"strings"
	"testing"

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
