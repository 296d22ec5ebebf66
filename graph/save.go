package graph

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
)

// protobufLimit is the largest message protobuf can encode (2 GiB). A
// model whose inline encoding would reach it is saved with external data.
const protobufLimit = 1<<31 - 1

// SaveOptions controls how a model is written.
type SaveOptions struct {
	// ExternalData stores large tensors in a side file even when the model
	// would fit in one protobuf. Models loaded with external data, and
	// models of 2 GiB or more, always use it.
	ExternalData bool
	// DataFile names the side file, relative to the model's folder;
	// default "<model file name>.data".
	DataFile string
	// Threshold is the smallest tensor (in bytes) moved to the side file;
	// default 1024.
	Threshold int64
	// InPlace allows overwriting the model the graph was loaded from.
	InPlace bool
}

// Marshal encodes the model deterministically with all tensors inline.
func (m *Model) Marshal() ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("graph: encode: %w", err)
	}
	return data, nil
}

// Save writes the model to path atomically: side data first, then the
// model, each to a temporary file in the destination folder that is
// synced and renamed into place. On any error nothing new is left
// visible.
func (m *Model) Save(path string, opts SaveOptions) error {
	if err := m.checkDestination(path, opts); err != nil {
		return err
	}
	if opts.Threshold <= 0 {
		opts.Threshold = 1024
	}
	external := opts.ExternalData || len(m.External) > 0 ||
		int64(proto.Size(m.Proto)) >= protobufLimit
	if !external {
		data, err := m.Marshal()
		if err != nil {
			return err
		}
		return writeAtomic(path, func(f *os.File) error { _, err := f.Write(data); return err })
	}
	dataFile := opts.DataFile
	if dataFile == "" {
		dataFile = filepath.Base(path) + ".data"
	}
	if err := CheckLocation(dataFile); err != nil {
		return fmt.Errorf("graph: data file: %w", err)
	}
	return m.saveExternal(path, dataFile, opts.Threshold)
}

// checkDestination refuses to overwrite the loaded model or its data
// files unless InPlace is set.
func (m *Model) checkDestination(path string, opts SaveOptions) error {
	if opts.InPlace || m.Dir == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("graph: %s is a directory", path)
		}
	}
	outDir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	inDir, err := filepath.Abs(m.Dir)
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if outDir != inDir {
		return nil
	}
	dataFile := opts.DataFile
	if dataFile == "" {
		dataFile = filepath.Base(path) + ".data"
	}
	for _, loc := range m.External {
		if loc == filepath.Base(path) || loc == dataFile {
			return fmt.Errorf("graph: %w: %s is a data file of the input model", ErrOutputExists, loc)
		}
	}
	return nil
}

// saveExternal moves tensors of at least threshold bytes into dataFile,
// writes it and then the model, and restores the in-memory tensors.
func (m *Model) saveExternal(path, dataFile string, threshold int64) error {
	type moved struct {
		t   *onnx.TensorProto
		raw []byte
	}
	var list []moved
	var bad error
	forEachTensor(m.Proto, func(t *onnx.TensorProto) {
		if bad != nil || DataTypeOf(t) == onnx.TensorProto_STRING {
			return
		}
		raw, err := RawBytes(t)
		if err != nil {
			bad = err
			return
		}
		if int64(len(raw)) >= threshold {
			list = append(list, moved{t, raw})
		}
	})
	if bad != nil {
		return fmt.Errorf("graph: %w", bad)
	}
	// Offsets are aligned so that each tensor can be memory-mapped.
	offsets := make([]int64, len(list))
	var end int64
	for i, mv := range list {
		align := int64(64)
		if len(mv.raw) >= 1<<20 {
			align = 4096
		}
		end = (end + align - 1) / align * align
		offsets[i] = end
		end += int64(len(mv.raw))
	}
	dataPath := filepath.Join(filepath.Dir(path), dataFile)
	err := writeAtomic(dataPath, func(f *os.File) error {
		for i, mv := range list {
			if _, err := f.WriteAt(mv.raw, offsets[i]); err != nil {
				return err
			}
		}
		return f.Truncate(end)
	})
	if err != nil {
		return err
	}
	// Swap the tensors to their external form only while encoding.
	type saved struct {
		raw   []byte
		float []float32
		i32   []int32
		i64   []int64
		f64   []float64
		u64   []uint64
	}
	keep := make([]saved, len(list))
	for i, mv := range list {
		t := mv.t
		keep[i] = saved{t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data}
		t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = nil, nil, nil, nil, nil, nil
		t.DataLocation = onnx.TensorProto_EXTERNAL.Enum()
		t.ExternalData = []*onnx.StringStringEntryProto{
			entry("location", dataFile),
			entry("offset", strconv.FormatInt(offsets[i], 10)),
			entry("length", strconv.Itoa(len(mv.raw))),
		}
	}
	data, err := m.Marshal()
	for i, mv := range list {
		t, k := mv.t, keep[i]
		t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = k.raw, k.float, k.i32, k.i64, k.f64, k.u64
		t.DataLocation, t.ExternalData = nil, nil
	}
	if err == nil {
		err = writeAtomic(path, func(f *os.File) error { _, err := f.Write(data); return err })
	}
	if err != nil {
		os.Remove(dataPath)
		return err
	}
	return nil
}

func entry(k, v string) *onnx.StringStringEntryProto {
	return &onnx.StringStringEntryProto{Key: &k, Value: &v}
}

// writeAtomic writes path through a temporary file in the same folder
// (created exclusively), syncs it, renames it into place and syncs the
// folder. The temporary file is removed on any error.
func writeAtomic(path string, write func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	tmp := f.Name()
	registerTemp(tmp)
	defer func() {
		unregisterTemp(tmp)
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("graph: write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("graph: sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("graph: close %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil && !errors.Is(serr, os.ErrInvalid) {
			return fmt.Errorf("graph: sync folder %s: %w", dir, serr)
		}
	}
	return nil
}
