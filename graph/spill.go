package graph

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/pare-dev/pare/onnx"
)

// SpillHeap moves the raw bytes of m's main-graph initializers into one
// new data file of the process's spill folder, mapped read-only, and
// points the tensors at the mapped bytes, when the tensors on the heap
// (pruned, refitted or otherwise rewritten, not aliasing a mapped data
// file) add up to at least minTotal bytes. Values do not change. The
// heap copies can then be collected, and MarshalMapped hands the tensors
// to a runtime by reference: a calibration session on a rewritten
// multi-GiB model neither holds its weights three times (pare's, the
// marshalled bytes, onnxruntime's) nor fails at protobuf's 2 GiB.
// Tensors still mapped from the model's own data file move too: a
// runtime resolves every reference under one folder. It returns the
// bytes moved off the heap (0 when below minTotal, or where files
// cannot be mapped). The files live until RemoveSpills.
func SpillHeap(m *Model, minTotal int64) (int64, error) {
	if !canMap {
		return 0, nil
	}
	spill.Lock()
	dir := spill.dir // "" until the first spill
	spill.Unlock()
	var list []*onnx.TensorProto
	var heap int64
	for _, t := range m.Proto.GetGraph().GetInitializer() {
		if len(t.RawData) < 4<<10 || DataTypeOf(t) == onnx.TensorProto_STRING {
			continue
		}
		d, _, _, mapped := mappedAt(t.RawData)
		if mapped && d == dir {
			continue
		}
		if !mapped {
			heap += int64(len(t.RawData))
		}
		list = append(list, t)
	}
	if heap < minTotal || heap == 0 {
		return 0, nil
	}
	dir, err := spillDir()
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(dir, "spill-*.data")
	if err != nil {
		return 0, fmt.Errorf("graph: spill: %w", err)
	}
	sizes := make([]int, len(list))
	for i, t := range list {
		sizes[i] = len(t.RawData)
	}
	offsets, _ := dataOffsets(sizes)
	fail := func(err error) (int64, error) {
		f.Close()
		os.Remove(f.Name())
		return 0, fmt.Errorf("graph: spill: %w", err)
	}
	for i, t := range list {
		if _, err := f.WriteAt(t.RawData, offsets[i]); err != nil {
			return fail(err)
		}
	}
	mf, err := mapFile(f, dir, filepath.Base(f.Name()))
	if err != nil {
		return fail(err)
	}
	for i, t := range list {
		t.RawData = mf.data[offsets[i] : offsets[i]+int64(len(t.RawData))]
	}
	// The heap copies are garbage now, as large as the weights moved:
	// hand their pages back before a session maps the file.
	debug.FreeOSMemory()
	return heap, nil
}

var spill struct {
	sync.Mutex
	dir string
}

// spillDir creates the process's spill folder under the system's
// temporary folder ($TMPDIR) on first use.
func spillDir() (string, error) {
	spill.Lock()
	defer spill.Unlock()
	if spill.dir == "" {
		d, err := os.MkdirTemp("", "pare-spill-")
		if err != nil {
			return "", fmt.Errorf("graph: spill: %w", err)
		}
		spill.dir = d
	}
	return spill.dir, nil
}

// RemoveSpills deletes the spill folder. Mapped tensors keep their bytes
// (the maps outlive the files), but no new session may be built from a
// model that was spilled: call it when the command ends.
func RemoveSpills() error {
	spill.Lock()
	defer spill.Unlock()
	if spill.dir == "" {
		return nil
	}
	err := os.RemoveAll(spill.dir)
	spill.dir = ""
	return err
}
