package graph

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
)

// maxNesting bounds protobuf message nesting (subgraphs inside If/Loop/
// Scan bodies), so hostile files cannot exhaust the stack.
const maxNesting = 100

// Load reads the model at path, resolving external data under the
// model's folder, and indexes its main graph.
func Load(path string) (*Model, error) {
	data, err := readModelFile(path)
	if err != nil {
		return nil, err
	}
	mp, err := unmarshalOwned(data)
	if err != nil {
		return nil, inFile(path, err)
	}
	dir := filepath.Dir(path)
	external, err := resolveExternal(mp, dir)
	if err != nil {
		return nil, inFile(path, err)
	}
	if err := checkTensors(mp); err != nil {
		return nil, inFile(path, err)
	}
	m, err := newModel(mp)
	if err != nil {
		return nil, inFile(path, err)
	}
	if err := checkOutputsDefined(m.Graph); err != nil {
		return nil, inFile(path, err)
	}
	if err := checkWellFormed(m); err != nil {
		return nil, inFile(path, err)
	}
	m.Path, m.Dir, m.External = path, dir, external
	return m, nil
}

// MapMin is the size from which Load maps a model file instead of
// reading it (where memory maps exist): below it the copy costs little,
// and every map lives as long as the process.
var MapMin int64 = 16 << 20

// readModelFile reads a whole regular file. It opens without blocking so
// that a FIFO or device named as the model cannot hang the process, and
// checks the file's type on the open descriptor.
func readModelFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, prefixed(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, prefixed(err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("graph: %s: %w: is a directory", path, ErrInvalidModel)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("graph: %s: %w: not a regular file (%v)", path, ErrInvalidModel, info.Mode().Type())
	}
	size := info.Size()
	if int64(int(size)) != size {
		return nil, fmt.Errorf("graph: %s: %w: %d bytes is too large", path, ErrInvalidModel, size)
	}
	// A large file is mapped, not read: its weights stay on disk until
	// something reads them (and can be released again), and a runtime
	// session can be handed them by reference to the file (MarshalMapped).
	if size >= MapMin {
		if data, ok := mapModelFile(f, path); ok {
			return data, nil
		}
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("graph: read %s: %w", path, err)
	}
	return data, nil
}

// Parse decodes a model held in memory. Tensors with external data are an
// error: they have no folder to be resolved in.
func Parse(data []byte) (*Model, error) {
	mp, err := unmarshal(data)
	if err != nil {
		return nil, prefixed(err)
	}
	var bad error
	forEachTensor(mp, func(t *onnx.TensorProto) {
		if IsExternal(t) && bad == nil {
			bad = fmt.Errorf("graph: tensor %q: %w: external data in an in-memory model", t.GetName(), ErrInvalidModel)
		}
	})
	if bad != nil {
		return nil, bad
	}
	if err := checkTensors(mp); err != nil {
		return nil, prefixed(err)
	}
	m, err := newModel(mp)
	if err != nil {
		return nil, prefixed(err)
	}
	if err := checkOutputsDefined(m.Graph); err != nil {
		return nil, prefixed(err)
	}
	if err := checkWellFormed(m); err != nil {
		return nil, prefixed(err)
	}
	return m, nil
}

// FromProto indexes a model built in memory.
func FromProto(mp *onnx.ModelProto) (*Model, error) {
	m, err := newModel(mp)
	if err != nil {
		return nil, prefixed(err)
	}
	return m, nil
}

func unmarshal(data []byte) (*onnx.ModelProto, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrInvalidModel)
	}
	mp := &onnx.ModelProto{}
	opts := proto.UnmarshalOptions{RecursionLimit: maxNesting}
	if err := opts.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("%w: not an ONNX protobuf: %v", ErrInvalidModel, err)
	}
	return mp, nil
}

func newModel(mp *onnx.ModelProto) (*Model, error) {
	if err := checkHeader(mp); err != nil {
		return nil, err
	}
	if err := SortTopologically(mp.Graph); err != nil {
		return nil, err
	}
	g, err := NewGraph(mp.Graph)
	if err != nil {
		return nil, err
	}
	if undef := g.Undefined(); len(undef) > 0 {
		return nil, fmt.Errorf("%w: value %q is read but never defined", ErrInvalidModel, undef[0])
	}
	return &Model{Proto: mp, Graph: g}, nil
}

// loadError prefixes an error with the package name and, for Load, the
// file, without repeating a "graph: " that the wrapped error (from an
// exported helper such as SortTopologically) already carries.
type loadError struct {
	path string
	err  error
}

func (e *loadError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), "graph: ")
	if e.path == "" {
		return "graph: " + msg
	}
	return "graph: " + e.path + ": " + msg
}

func (e *loadError) Unwrap() error { return e.err }

func inFile(path string, err error) error { return &loadError{path, err} }

func prefixed(err error) error { return &loadError{"", err} }

// isNotExist reports whether err means a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
