package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// External data is mapped read-only, not read: a consumer cannot edit a
// tensor's raw bytes in place (it must replace them), so the file never
// changes; saving the model
// in place over its own data file (which the loaded tensors alias) writes
// the same bytes; and the tensors keep their values after it.
func TestExternalDataMappedPrivately(t *testing.T) {
	path, ext := externalOpNet(t)
	onDisk, err := os.ReadFile(path + ".data")
	if err != nil {
		t.Fatal(err)
	}
	if len(ext.External) == 0 {
		t.Fatal("no tensor was stored externally")
	}
	want := map[string][]byte{}
	var edited *onnx.TensorProto
	for _, init := range ext.Proto.Graph.Initializer {
		if ext.External[init.GetName()] == "" {
			continue
		}
		want[init.GetName()] = bytes.Clone(init.RawData)
		if edited == nil && len(init.RawData) > 0 {
			edited = init
		}
	}
	// Saving in place renames a new data file over the mapped one.
	if err := ext.Save(path, graph.SaveOptions{InPlace: true, ExternalData: true, Threshold: 64}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path + ".data"); !bytes.Equal(again, onDisk) {
		t.Fatal("saving in place changed the data file")
	}
	for _, init := range ext.Proto.Graph.Initializer {
		if w, ok := want[init.GetName()]; ok && !bytes.Equal(init.RawData, w) {
			t.Fatalf("tensor %q changed after the data file was replaced", init.GetName())
		}
	}
	ext2, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var mine *onnx.TensorProto
	for _, init := range ext2.Proto.Graph.Initializer {
		if init.GetName() == edited.GetName() {
			mine = init
		}
	}
	if !writeFaults(mine.RawData) {
		t.Fatal("a loaded external tensor's bytes are writable; the map must be read-only")
	}
	if after, _ := os.ReadFile(path + ".data"); !bytes.Equal(after, onDisk) {
		t.Fatal("writing to a loaded tensor's bytes changed the data file")
	}
	// Release drops the pages; reading again gives the same bytes.
	want2 := bytes.Clone(mine.RawData)
	graph.Release(mine)
	if !bytes.Equal(mine.RawData, want2) {
		t.Fatal("a released tensor reads back different bytes")
	}
}

// writeFaults reports whether writing to b faults (read-only memory).
func writeFaults(b []byte) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { faulted = recover() != nil }()
	b[0] ^= 0xff
	return false
}

// externalOpNet saves the OpNet fixture with its tensors of 64 bytes or
// more in external data and loads it back (mapped).
func externalOpNet(t *testing.T) (string, *graph.Model) {
	t.Helper()
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "fmnist_opnet_op12.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := m.Save(path, graph.SaveOptions{ExternalData: true, Threshold: 64}); err != nil {
		t.Fatal(err)
	}
	ext, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, ext
}
