//go:build unix

package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// A model file of MapMin bytes or more is mapped, not read: its
// initializers alias the read-only map, MarshalMapped hands them to a
// runtime as references into the model file itself (a few KB instead of
// the weights), and saving in place over the mapped file leaves the
// loaded tensors and the file's bytes as they were.
func TestLargeModelFileMapped(t *testing.T) {
	src := filepath.Join("..", "fixtures", "models", "fmnist_resnet_op13.onnx")
	path := filepath.Join(t.TempDir(), "m.onnx")
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(old int64) { graph.MapMin = old }(graph.MapMin)
	graph.MapMin = 1
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var big []byte
	want := map[string][]byte{}
	for _, init := range m.Proto.Graph.Initializer {
		want[init.GetName()] = bytes.Clone(init.RawData)
		if len(init.RawData) > len(big) {
			big = init.RawData
		}
	}
	if !writeFaults(big) {
		t.Fatal("a loaded tensor's bytes are writable; the model file must be mapped read-only")
	}
	b, dir, err := graph.MarshalMapped(m.Proto)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Dir(path) || len(b) > len(orig)/4 {
		t.Fatalf("MarshalMapped: %d bytes of a %d-byte model, folder %q: weights were not referenced", len(b), len(orig), dir)
	}
	if !bytes.Contains(b, []byte("m.onnx")) {
		t.Fatal("MarshalMapped does not reference the model file")
	}
	if err := m.Save(path, graph.SaveOptions{InPlace: true}); err != nil {
		t.Fatal(err)
	}
	for _, init := range m.Proto.Graph.Initializer {
		if !bytes.Equal(init.RawData, want[init.GetName()]) {
			t.Fatalf("tensor %q changed after the model file was replaced", init.GetName())
		}
	}
	again, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range again.Proto.Graph.Initializer {
		if !bytes.Equal(init.RawData, want[init.GetName()]) {
			t.Fatalf("tensor %q reads back different bytes", init.GetName())
		}
	}
	// Release drops the pages; reading again gives the same bytes.
	for _, init := range again.Proto.Graph.Initializer {
		graph.Release(init)
		if !bytes.Equal(init.RawData, want[init.GetName()]) {
			t.Fatalf("released tensor %q reads back different bytes", init.GetName())
		}
	}
}
