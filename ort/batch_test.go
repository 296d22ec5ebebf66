package ort

import (
	"errors"
	"reflect"
	"testing"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

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
