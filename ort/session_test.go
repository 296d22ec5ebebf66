package ort

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

var ctx = context.Background()

func TestRunMLPMatchesGo(t *testing.T) {
	m := orttest.MLP()
	x := inputX(5)
	_, want := mlpRef(t, m, x.Data.([]float32), 5)

	s := openSession(t, m, Options{})
	if got := s.Inputs(); len(got) != 1 || got[0].String() != "x: float32[-1 4]" {
		t.Errorf("inputs %v", got)
	}
	if got := s.Outputs(); len(got) != 1 || got[0].String() != "logits: float32[-1 3]" {
		t.Errorf("outputs %v", got)
	}
	out, err := s.Run(ctx, map[string]tensor.Dense{"x": x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out[0].Shape, []int64{5, 3}) {
		t.Errorf("shape %v", out[0].Shape)
	}
	assertClose(t, "logits", out[0], want, 1e-5)

	path := orttest.Write(t, t.TempDir(), "mlp.onnx", m)
	fs, err := NewSessionFromFile(path, Options{Threads: 2, OptLevel: OptDisabled})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if fs.Threads() != 2 || fs.Name() != path {
		t.Errorf("threads %d name %q", fs.Threads(), fs.Name())
	}
	out2, err := fs.Run(ctx, map[string]tensor.Dense{"x": x}, []string{"logits"})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "logits from file", out2[0], want, 1e-5)
	if err := fs.Close(); err != nil {
		t.Error(err)
	}
	if _, err := fs.Run(ctx, map[string]tensor.Dense{"x": x}, nil); err == nil {
		t.Error("Run after Close succeeded")
	}
}

func TestRunInputErrors(t *testing.T) {
	s := openSession(t, orttest.MLP(), Options{})
	x := inputX(2)
	i64, _ := tensor.New([]int64{2, 4}, make([]int64, 8))
	wide, _ := tensor.New([]int64{2, 5}, make([]float32, 10))
	flat, _ := tensor.New([]int64{8}, make([]float32, 8))
	tests := []struct {
		name    string
		inputs  map[string]tensor.Dense
		outputs []string
		want    string
	}{
		{"wrong name", map[string]tensor.Dense{"y": x}, nil, `no input "y"`},
		{"missing", map[string]tensor.Dense{}, nil, `missing input "x"`},
		{"extra", map[string]tensor.Dense{"x": x, "z": x}, nil, `no input "z"`},
		{"dtype", map[string]tensor.Dense{"x": i64}, nil, "int64[2 4], the model wants x: float32[-1 4]"},
		{"static dim", map[string]tensor.Dense{"x": wide}, nil, "float32[2 5]"},
		{"rank", map[string]tensor.Dense{"x": flat}, nil, "float32[8]"},
		{"output", map[string]tensor.Dense{"x": x}, []string{"probs"}, `no output "probs" (outputs: logits)`},
	}
	for _, tt := range tests {
		_, err := s.Run(ctx, tt.inputs, tt.outputs)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrInput mentioning %q", tt.name, err, tt.want)
		}
	}
	bad := tensor.Dense{DType: tensor.Float32, Shape: []int64{2, 4}, Data: []float32{1}}
	if _, err := s.Run(ctx, map[string]tensor.Dense{"x": bad}, nil); err == nil {
		t.Error("invalid Dense accepted")
	}
}

func TestBadModels(t *testing.T) {
	good := orttest.Bytes(t, orttest.MLP())
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	noOutputs := orttest.MLP()
	noOutputs.Graph.Output = nil
	unknownOp := orttest.MLP()
	unknownOp.Graph.Node[2].OpType = proto.String("NoSuchOp")
	cases := map[string][]byte{
		"empty":      nil,
		"random":     random,
		"truncated":  good[:len(good)/2],
		"text":       []byte("ir_version: 8\ngraph { }\n"),
		"no outputs": orttest.Bytes(t, noOutputs),
		"unknown op": orttest.Bytes(t, unknownOp),
	}
	for name, b := range cases {
		s, err := NewSession(b, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrModel) {
			t.Errorf("%s: %v is not ErrModel", name, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing.onnx"), dir} {
		if _, err := NewSessionFromFile(p, Options{}); !errors.Is(err, ErrModel) {
			t.Errorf("%s: %v is not ErrModel", p, err)
		}
	}
	if _, err := NewSession(good, Options{Threads: -1}); err == nil {
		t.Error("negative threads accepted")
	}
}

// TestDTypes runs Identity over every element type Dense holds, plus
// computed int64 and float16 results, with static and symbolic shapes.
func TestDTypes(t *testing.T) {
	types := []struct {
		elem int32
		d    tensor.Dense
	}{
		{orttest.Float, mustDense(t, tensor.Float32, []int64{2}, []float32{1.5, -2})},
		{int32(onnx.TensorProto_DOUBLE), mustDense(t, tensor.Float64, []int64{1, 2}, []float64{1e300, -1})},
		{int32(onnx.TensorProto_FLOAT16), mustDense(t, tensor.Float16, []int64{3}, []uint16{0x3c00, 0xc000, 0x7e00})},
		{int32(onnx.TensorProto_BFLOAT16), mustDense(t, tensor.BFloat16, []int64{2}, []uint16{0x3f80, 0x4000})},
		{int32(onnx.TensorProto_INT8), mustDense(t, tensor.Int8, []int64{2}, []int8{-128, 127})},
		{int32(onnx.TensorProto_UINT8), mustDense(t, tensor.Uint8, []int64{2}, []uint8{0, 255})},
		{int32(onnx.TensorProto_INT16), mustDense(t, tensor.Int16, []int64{1}, []int16{-300})},
		{int32(onnx.TensorProto_UINT16), mustDense(t, tensor.Uint16, []int64{1}, []uint16{65535})},
		{int32(onnx.TensorProto_INT32), mustDense(t, tensor.Int32, []int64{2}, []int32{-5, 5})},
		{int32(onnx.TensorProto_UINT32), mustDense(t, tensor.Uint32, []int64{1}, []uint32{1 << 31})},
		{orttest.Int64, mustDense(t, tensor.Int64, []int64{2, 1}, []int64{-1 << 40, 7})},
		{int32(onnx.TensorProto_UINT64), mustDense(t, tensor.Uint64, []int64{1}, []uint64{1<<64 - 1})},
		{orttest.Bool, mustDense(t, tensor.Bool, []int64{2}, []bool{true, false})},
		{orttest.Float, mustDense(t, tensor.Float32, nil, []float32{42})},
		{orttest.Int64, mustDense(t, tensor.Int64, nil, []int64{-9})},
		{orttest.Float, mustDense(t, tensor.Float32, []int64{0, 3}, []float32{})},
	}
	for _, tt := range types {
		for _, symbolic := range []bool{false, true} {
			dims := make([]orttest.Dim, len(tt.d.Shape))
			for i, d := range tt.d.Shape {
				dims[i] = d
				if symbolic {
					dims[i] = "d" + string(rune('0'+i))
				}
			}
			m := orttest.Model(
				[]*onnx.NodeProto{orttest.Node("Identity", []string{"in"}, []string{"out"})}, nil,
				[]*onnx.ValueInfoProto{orttest.Value("in", tt.elem, dims...)},
				[]*onnx.ValueInfoProto{orttest.Value("out", tt.elem, dims...)},
			)
			s := openSession(t, m, Options{})
			out, err := s.Run(ctx, map[string]tensor.Dense{"in": tt.d}, nil)
			if err != nil {
				t.Errorf("%v symbolic=%v: %v", tt.d, symbolic, err)
				continue
			}
			if !reflect.DeepEqual(out[0].Shape, tt.d.Shape) && !(len(out[0].Shape) == 0 && len(tt.d.Shape) == 0) {
				t.Errorf("%v symbolic=%v: shape %v", tt.d, symbolic, out[0].Shape)
			}
			if out[0].DType != tt.d.DType || !reflect.DeepEqual(out[0].Data, tt.d.Data) {
				t.Errorf("%v symbolic=%v: got %v %v", tt.d, symbolic, out[0], out[0].Data)
			}
		}
	}

	// Computed results: int64 Add and float16 Mul with a batch dim.
	m := orttest.Model(
		[]*onnx.NodeProto{
			orttest.Node("Add", []string{"ids", "ids"}, []string{"twice"}),
			orttest.Node("Mul", []string{"h", "h"}, []string{"sq"}),
			orttest.Node("Cast", []string{"h"}, []string{"h32"}, orttest.IntAttr("to", int64(orttest.Float))),
			orttest.Node("ReduceSum", []string{"h32"}, []string{"total"}, orttest.IntAttr("keepdims", 0)),
		}, nil,
		[]*onnx.ValueInfoProto{orttest.Value("ids", orttest.Int64, "N", 2), orttest.Value("h", orttest.Float16, "N", 2)},
		[]*onnx.ValueInfoProto{orttest.Value("twice", orttest.Int64, "N", 2), orttest.Value("sq", orttest.Float16, "N", 2), orttest.Value("total", orttest.Float)},
	)
	s := openSession(t, m, Options{})
	ids := mustDense(t, tensor.Int64, []int64{3, 2}, []int64{1, 2, 3, 4, 5, 1 << 40})
	h := mustDense(t, tensor.Float16, []int64{3, 2}, []uint16{
		tensor.Float32ToFloat16(1.5), tensor.Float32ToFloat16(-2), tensor.Float32ToFloat16(0.25),
		tensor.Float32ToFloat16(3), tensor.Float32ToFloat16(10), tensor.Float32ToFloat16(-0.5),
	})
	out, err := s.Run(ctx, map[string]tensor.Dense{"ids": ids, "h": h}, []string{"total", "sq", "twice"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out[2].Data, []int64{2, 4, 6, 8, 10, 2 << 40}) {
		t.Errorf("twice = %v", out[2].Data)
	}
	if out[1].DType != tensor.Float16 || !reflect.DeepEqual(out[1].Shape, []int64{3, 2}) {
		t.Errorf("sq is %v", out[1])
	}
	assertClose(t, "sq", out[1], []float32{2.25, 4, 0.0625, 9, 100, 0.25}, 0)
	if out[0].Rank() != 0 {
		t.Errorf("total is %v", out[0])
	}
	assertClose(t, "total", out[0], []float32{12.25}, 1e-3)
}

func mustDense(t *testing.T, dt tensor.DType, shape []int64, data any) tensor.Dense {
	t.Helper()
	d, err := tensor.NewOf(dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestExternalData loads a model whose weights live in a separate file,
// both plainly and through the float16 output rewrite, which runs the
// model from bytes and must still find the data.
func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	m := orttest.MLP()
	var blob []byte
	for _, init := range m.Graph.Initializer {
		off := len(blob)
		blob = append(blob, init.RawData...)
		init.ExternalData = []*onnx.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String("weights.bin")},
			{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(off))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(init.RawData)))},
		}
		init.DataLocation = onnx.TensorProto_EXTERNAL.Enum()
		init.RawData = nil
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	path := orttest.Write(t, dir, "ext.onnx", m)
	x := inputX(3)
	_, want := mlpRef(t, orttest.MLP(), x.Data.([]float32), 3)

	s, err := NewSessionFromFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(ctx, map[string]tensor.Dense{"x": x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "logits", out[0], want, 1e-5)

	half := proto.Clone(m).(*onnx.ModelProto)
	half.Graph.Node = append(half.Graph.Node, orttest.Node("Cast", []string{"logits"}, []string{"logits16"}, orttest.IntAttr("to", int64(orttest.Float16))))
	half.Graph.Output = []*onnx.ValueInfoProto{orttest.Value("logits16", orttest.Float16, "N", 3)}
	hp := orttest.Write(t, dir, "half.onnx", half)
	hs, err := NewSessionFromFile(hp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	out, err = hs.Run(ctx, map[string]tensor.Dense{"x": x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "logits16", out[0], want, 1e-2)
}

func TestCancelledContext(t *testing.T) {
	s := openSession(t, orttest.MLP(), Options{})
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Run(c, map[string]tensor.Dense{"x": inputX(1)}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	s := openSession(t, orttest.MLP(), Options{})
	x := inputX(4)
	_, want := mlpRef(t, orttest.MLP(), x.Data.([]float32), 4)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			out, err := s.Run(ctx, map[string]tensor.Dense{"x": x}, nil)
			if err == nil {
				got, _ := out[0].Float64s()
				for i := range got {
					if d := got[i] - float64(want[i]); d > 1e-5 || d < -1e-5 {
						err = errors.New("wrong result")
					}
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
