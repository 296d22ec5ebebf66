package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// convProto is a small valid model every command accepts, with one
// prunable channel group: y = Conv(Relu(Conv(x, w, b)), w2),
// x [N,4,8,8], w [8,4,3,3] (padded), w2 [8,8,3,3].
func convProto() *onnx.ModelProto {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 4, 8, 8)
	w := make([]float32, 8*4*3*3)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	w2 := make([]float32, 8*8*3*3)
	for i := range w2 {
		w2[i] = float32(i%5) - 2
	}
	wn := b.Init("w", []int64{8, 4, 3, 3}, w)
	bn := b.Init("b", []int64{8}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	w2n := b.Init("w2", []int64{8, 8, 3, 3}, w2)
	c := b.Node("Conv", []string{x, wn, bn}, build.Ints("kernel_shape", 3, 3), build.Int("group", 1), build.Ints("pads", 1, 1, 1, 1))
	r := b.Node("Relu", []string{c})
	y := b.Node("Conv", []string{r, w2n}, build.Ints("kernel_shape", 3, 3))
	b.Output(y, onnx.TensorProto_FLOAT, -1, 8, 6, 6)
	return b.Model
}

// writeModel writes mp to dir/name without validation.
func writeModel(t *testing.T, dir, name string, mp *onnx.ModelProto) string {
	t.Helper()
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// malformedModels are models that are not valid ONNX; every command must
// refuse each with exit 3 before any work.
func malformedModels() map[string]func(*onnx.ModelProto) {
	return map[string]func(*onnx.ModelProto){
		"ir99": func(mp *onnx.ModelProto) { mp.IrVersion = proto.Int64(99) },
		"string-weight": func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.DataType = proto.Int32(int32(onnx.TensorProto_STRING))
			w.RawData, w.FloatData = nil, nil
			w.StringData = make([][]byte, 8*4*3*3)
			for i := range w.StringData {
				w.StringData[i] = []byte("1")
			}
		},
		"no-outputs": func(mp *onnx.ModelProto) { mp.Graph.Output = nil },
		"duplicate-outputs": func(mp *onnx.ModelProto) {
			mp.Graph.Output = append(mp.Graph.Output, proto.Clone(mp.Graph.Output[0]).(*onnx.ValueInfoProto))
		},
		"empty-op-type": func(mp *onnx.ModelProto) { mp.Graph.Node[1].OpType = proto.String("") },
		"conv-group-0":  func(mp *onnx.ModelProto) { mp.Graph.Node[0].Attribute[1].I = proto.Int64(0) },
	}
}

func TestMalformedModelsRefusedByEveryCommand(t *testing.T) {
	dir := t.TempDir()
	good := writeModel(t, dir, "good.onnx", convProto())
	if _, err := graph.Load(good); err != nil {
		t.Fatalf("the base model must be valid: %v", err)
	}
	for name, breakIt := range malformedModels() {
		mp := convProto()
		breakIt(mp)
		model := writeModel(t, dir, name+".onnx", mp)
		out := filepath.Join(dir, name+".out.onnx")
		for _, args := range [][]string{
			{"inspect", model},
			{"prune", model, "-o", out, "--ratio", "0.3"},
			{"quant", model, "-o", out},
			{"quant", model, "-o", out, "--format", "nbits"},
			{"check", model, good},
			{"check", good, model},
			{"bench", model, "--warmup", "0", "--runs", "1"},
		} {
			start := time.Now()
			_, code := runPare(t, args...)
			if code != exitUnsupported {
				t.Errorf("%s: pare %v: exit %d, want %d", name, args, code, exitUnsupported)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s: pare %v took %v", name, args, d)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s: pare %v wrote %s", name, args, out)
				os.Remove(out)
			}
		}
	}
}

// withTimeout runs pare in the test process and fails the test, instead
// of hanging it, when pare does not return within d.
func withTimeout(t *testing.T, d time.Duration, args ...string) int {
	t.Helper()
	done := make(chan int, 1)
	go func() {
		_, code := runPare(t, args...)
		done <- code
	}()
	select {
	case code := <-done:
		return code
	case <-time.After(d):
		t.Fatalf("pare %v still running after %v", args, d)
		return -1
	}
}

func TestRuntimeCommandsApplyExternalDataRules(t *testing.T) {
	root := t.TempDir()
	dir, outside := filepath.Join(root, "model"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := graph.FromProto(convProto())
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.onnx")
	if err := m.Save(model, graph.SaveOptions{ExternalData: true, DataFile: "w.bin", Threshold: 16}); err != nil {
		t.Fatal(err)
	}
	good := writeModel(t, root, "good.onnx", convProto())
	// The same bytes, but the data file is now a hard link to a file
	// outside the model's folder.
	secret := filepath.Join(outside, "secret.bin")
	if err := os.Rename(filepath.Join(dir, "w.bin"), secret); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(dir, "w.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Load(model); !errors.Is(err, graph.ErrUnsafePath) {
		t.Fatalf("loader: %v, want %v", err, graph.ErrUnsafePath)
	}
	for _, args := range [][]string{
		{"check", model, good},
		{"check", good, model},
		{"bench", model, "--warmup", "0", "--runs", "1"},
	} {
		if code := withTimeout(t, 10*time.Second, args...); code != exitUnsupported {
			t.Errorf("pare %v: exit %d, want %d", args, code, exitUnsupported)
		}
	}
}
