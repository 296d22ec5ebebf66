package graph

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pare-dev/pare/onnx"
)

// protobufLimit is the largest message protobuf can encode (2 GiB).
const protobufLimit = 1<<31 - 1

// InlineLimit is the encoded size from which a model is saved with
// external data even when not asked to, because protobuf cannot encode a
// message of 2 GiB or more. It is a variable so that tests can exercise
// the decision without gigabytes of data.
var InlineLimit int64 = protobufLimit

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
	// InPlace allows overwriting the model the graph was loaded from and
	// its data files.
	InPlace bool
}

// Marshal encodes the model deterministically with all tensors inline.
func (m *Model) Marshal() ([]byte, error) { return marshalDet(m.Proto) }

// Save writes the model to path atomically: every file goes to a
// temporary file in the destination folder that is written and synced;
// only when all are complete are they renamed into place, side data
// first and the model last, and the folder synced. On any error the
// temporary files are removed and nothing new is left visible.
func (m *Model) Save(path string, opts SaveOptions) error {
	s, err := m.stage(path, opts, false)
	if err != nil {
		return err
	}
	return s.Commit()
}

// Staged is a model written and synced under temporary names beside its
// destination, not yet visible there: Commit renames it into place,
// Discard removes it.
type Staged struct {
	files  []*tempFile // in commit order: side data first, the model last
	verify *tempFile   // a copy of the model file naming the temporary data file
}

// Stage writes the model as Save does but stops before renaming: the
// caller can run the written files (VerifyPath) and drop the model from
// memory before deciding to Commit or Discard.
func (m *Model) Stage(path string, opts SaveOptions) (*Staged, error) {
	return m.stage(path, opts, true)
}

// VerifyPath is a model file that loads the staged model with its
// external data, for a runtime to check before Commit.
func (s *Staged) VerifyPath() string {
	if s.verify != nil {
		return s.verify.name
	}
	return s.files[len(s.files)-1].name
}

// Commit renames the staged files into place, side data first, and
// syncs the folder.
func (s *Staged) Commit() error {
	if s.verify != nil {
		s.verify.discard()
		s.verify = nil
	}
	return commit(s.files...)
}

// Discard removes the staged files; nothing becomes visible.
func (s *Staged) Discard() {
	if s.verify != nil {
		s.verify.discard()
	}
	for _, f := range s.files {
		f.discard()
	}
}

func (m *Model) stage(path string, opts SaveOptions, verifyCopy bool) (*Staged, error) {
	if opts.Threshold <= 0 {
		opts.Threshold = 1024
	}
	external := opts.ExternalData || len(m.External) > 0 ||
		int64(proto.Size(m.Proto)) >= InlineLimit
	dataFile := ""
	if external {
		dataFile = opts.DataFile
		if dataFile == "" {
			dataFile = filepath.Base(path) + ".data"
		}
		if err := CheckLocation(dataFile); err != nil {
			return nil, fmt.Errorf("graph: data file: %w", err)
		}
	}
	if err := m.checkDestination(path, dataFile, opts.InPlace); err != nil {
		return nil, err
	}
	if external {
		return m.stageExternal(path, dataFile, opts.Threshold, verifyCopy)
	}
	tmp, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	err = tmp.finish(func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if err := encodeTo(w, m.Proto); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		tmp.discard()
		return nil, err
	}
	return &Staged{files: []*tempFile{tmp}}, nil
}

// encodeTo writes mp to w byte for byte as Marshal encodes it, without
// holding the whole encoding in memory: the main graph's initializers'
// raw_data, nearly all of a model's bytes, goes to w straight from the
// tensors. It relies on protobuf-go writing known fields in field-number
// order and unknown fields last, so that a message encodes as the
// encoding of its fields below a number, then that field, then the rest;
// the round-trip tests compare its output with Marshal's.
func encodeTo(w io.Writer, mp *onnx.ModelProto) error {
	if mp.Graph == nil {
		data, err := marshalDet(mp)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	mBefore, mAfter, err := splitAt(mp, fieldModelGraph)
	if err != nil {
		return err
	}
	gBefore, gAfter, err := splitAt(mp.Graph, fieldGraphInitializer)
	if err != nil {
		return err
	}
	// Every initializer as (head, raw, tail): raw_data is written from
	// the tensor; head and tail are the encodings of the other fields.
	type part struct {
		head, raw, tail []byte
		hasRaw          bool
		size            int
	}
	parts := make([]part, len(mp.Graph.Initializer))
	gSize := len(gBefore) + len(gAfter)
	for i, t := range mp.Graph.Initializer {
		p := &parts[i]
		if t == nil {
			return fmt.Errorf("graph: encode: initializer %d is nil", i)
		}
		if t.RawData == nil {
			if p.head, err = marshalDet(t); err != nil {
				return err
			}
		} else {
			if p.head, p.tail, err = splitAt(t, fieldTensorRawData); err != nil {
				return err
			}
			p.raw, p.hasRaw = t.RawData, true
		}
		p.size = len(p.head) + len(p.tail)
		if p.hasRaw {
			p.size += protowire.SizeTag(fieldTensorRawData) + protowire.SizeBytes(len(p.raw))
		}
		gSize += protowire.SizeTag(fieldGraphInitializer) + protowire.SizeBytes(p.size)
	}
	buf := make([]byte, 0, 32)
	write := func(b []byte) {
		if err == nil {
			_, err = w.Write(b)
		}
	}
	write(mBefore)
	buf = protowire.AppendTag(buf[:0], fieldModelGraph, protowire.BytesType)
	write(protowire.AppendVarint(buf, uint64(gSize)))
	write(gBefore)
	for _, p := range parts {
		buf = protowire.AppendTag(buf[:0], fieldGraphInitializer, protowire.BytesType)
		write(protowire.AppendVarint(buf, uint64(p.size)))
		write(p.head)
		if p.hasRaw {
			buf = protowire.AppendTag(buf[:0], fieldTensorRawData, protowire.BytesType)
			write(protowire.AppendVarint(buf, uint64(len(p.raw))))
			write(p.raw)
		}
		write(p.tail)
	}
	write(gAfter)
	write(mAfter)
	return err
}

func marshalDet(m proto.Message) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("graph: encode: %w", err)
	}
	return data, nil
}

// splitAt encodes the populated fields of m numbered below num, and
// separately those numbered above it together with m's unknown fields.
func splitAt(m proto.Message, num protowire.Number) (before, after []byte, err error) {
	src := m.ProtoReflect()
	lo, hi := src.Type().New(), src.Type().New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Number() < num:
			lo.Set(fd, v)
		case fd.Number() > num:
			hi.Set(fd, v)
		}
		return true
	})
	hi.SetUnknown(src.GetUnknown())
	if before, err = marshalDet(lo.Interface()); err != nil {
		return nil, nil, err
	}
	if after, err = marshalDet(hi.Interface()); err != nil {
		return nil, nil, err
	}
	return before, after, nil
}

// checkDestination refuses a destination that is a folder, and, unless
// inPlace is set, one that would overwrite the file the model was loaded
// from or any of its data files (by name, or as the same file through
// another link).
func (m *Model) checkDestination(path, dataFile string, inPlace bool) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("graph: %s is a directory", path)
	}
	if inPlace || m.Path == "" {
		return nil
	}
	inputs := []string{m.Path}
	seen := map[string]bool{}
	for _, loc := range m.External {
		if !seen[loc] {
			seen[loc] = true
			inputs = append(inputs, filepath.Join(m.Dir, loc))
		}
	}
	outputs := []string{path}
	if dataFile != "" {
		outputs = append(outputs, filepath.Join(filepath.Dir(path), dataFile))
	}
	for _, out := range outputs {
		for _, in := range inputs {
			if samePath(out, in) {
				return fmt.Errorf("graph: %w: writing %s would overwrite the input's %s (save in place explicitly to allow it)",
					ErrOutputExists, out, in)
			}
		}
	}
	return nil
}

// samePath reports whether a and b name the same file: the same absolute
// path, or existing files that are one file through links.
func samePath(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	if errA == nil && errB == nil && absA == absB {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// stageExternal moves tensors of at least threshold bytes into dataFile
// and writes it and then the model under temporary names, restoring the
// in-memory tensors before returning. With verifyCopy it also writes a
// copy of the model file that names the temporary data file.
func (m *Model) stageExternal(path, dataFile string, threshold int64, verifyCopy bool) (*Staged, error) {
	type moved struct {
		t   *onnx.TensorProto
		raw []byte
	}
	var list []moved
	var bad error
	visited := map[*onnx.TensorProto]bool{}
	forEachTensor(m.Proto, func(t *onnx.TensorProto) {
		if bad != nil || visited[t] || DataTypeOf(t) == onnx.TensorProto_STRING {
			return
		}
		visited[t] = true
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
		return nil, fmt.Errorf("graph: %w", bad)
	}
	sizes := make([]int, len(list))
	for i, mv := range list {
		sizes[i] = len(mv.raw)
	}
	offsets, end := dataOffsets(sizes)
	dataPath := filepath.Join(filepath.Dir(path), dataFile)
	dataTmp, err := createTemp(dataPath)
	if err != nil {
		return nil, err
	}
	err = dataTmp.finish(func(f *os.File) error {
		for i, mv := range list {
			if _, err := f.WriteAt(mv.raw, offsets[i]); err != nil {
				return err
			}
			// Written: a mapped input tensor need not stay resident.
			releaseMapped(mv.raw)
		}
		return f.Truncate(end)
	})
	if err != nil {
		dataTmp.discard()
		return nil, err
	}

	// encode swaps the tensors to their external form in location only
	// while encoding.
	encode := func(location string) ([]byte, error) {
		type saved struct {
			raw      []byte
			float    []float32
			i32      []int32
			i64      []int64
			f64      []float64
			u64      []uint64
			loc      *onnx.TensorProto_DataLocation
			external []*onnx.StringStringEntryProto
		}
		keep := make([]saved, len(list))
		for i, mv := range list {
			t := mv.t
			keep[i] = saved{t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data,
				t.DataLocation, t.ExternalData}
			t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = nil, nil, nil, nil, nil, nil
			t.DataLocation = onnx.TensorProto_EXTERNAL.Enum()
			t.ExternalData = []*onnx.StringStringEntryProto{
				entry("location", location),
				entry("offset", strconv.FormatInt(offsets[i], 10)),
				entry("length", strconv.Itoa(len(mv.raw))),
			}
		}
		data, err := m.Marshal()
		for i, mv := range list {
			t, k := mv.t, keep[i]
			t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = k.raw, k.float, k.i32, k.i64, k.f64, k.u64
			t.DataLocation, t.ExternalData = k.loc, k.external
		}
		if err == nil && int64(len(data)) >= InlineLimit {
			err = fmt.Errorf("graph: %s: %w: %d bytes even with %d tensors in external data",
				path, ErrUnsupported, len(data), len(list))
		}
		return data, err
	}
	writeTemp := func(data []byte) (*tempFile, error) {
		tmp, err := createTemp(path)
		if err != nil {
			return nil, err
		}
		if err := tmp.finish(func(f *os.File) error { _, err := f.Write(data); return err }); err != nil {
			tmp.discard()
			return nil, err
		}
		return tmp, nil
	}
	data, err := encode(dataFile)
	if err != nil {
		dataTmp.discard()
		return nil, err
	}
	modelTmp, err := writeTemp(data)
	if err != nil {
		dataTmp.discard()
		return nil, err
	}
	st := &Staged{files: []*tempFile{dataTmp, modelTmp}}
	if verifyCopy {
		rel, err := filepath.Rel(filepath.Dir(path), dataTmp.name)
		if err == nil {
			data, err = encode(filepath.ToSlash(rel))
		}
		if err == nil {
			st.verify, err = writeTemp(data)
		}
		if err != nil {
			st.Discard()
			return nil, err
		}
	}
	return st, nil
}

func entry(k, v string) *onnx.StringStringEntryProto {
	return &onnx.StringStringEntryProto{Key: &k, Value: &v}
}

// WriteFile writes data to path the way models are written: through a
// temporary file in the same folder (removed on error and by
// RemoveTemps), synced, renamed into place, the folder synced. Readers
// see the old file or the new one, never a part. Every file pare writes
// goes through it or Save.
func WriteFile(path string, data []byte) error {
	return writeAtomic(path, func(f *os.File) error { _, err := f.Write(data); return err })
}

// writeAtomic writes path through a temporary file in the same folder,
// then renames it into place and syncs the folder.
func writeAtomic(path string, write func(*os.File) error) error {
	tmp, err := createTemp(path)
	if err != nil {
		return err
	}
	if err := tmp.finish(write); err != nil {
		tmp.discard()
		return err
	}
	return commit(tmp)
}

// tempFile is a file being written under a temporary name beside its
// destination.
type tempFile struct {
	f          *os.File
	name, dest string
}

// createTemp creates (exclusively) a temporary file in dest's folder and
// registers it for RemoveTemps.
func createTemp(dest string) (*tempFile, error) {
	f, err := createRegistered(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("graph: %w %s: %w", ErrWrite, dest, err)
	}
	return &tempFile{f: f, name: f.Name(), dest: dest}, nil
}

// finish writes the content, makes the file world-readable like a file
// created normally, syncs and closes it.
func (t *tempFile) finish(write func(*os.File) error) error {
	if err := write(t.f); err != nil {
		return fmt.Errorf("graph: %w %s: %w", ErrWrite, t.dest, err)
	}
	if err := t.f.Chmod(0o644); err != nil {
		return fmt.Errorf("graph: %w %s: %w", ErrWrite, t.dest, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("graph: %w %s: sync: %w", ErrWrite, t.dest, err)
	}
	err := t.f.Close()
	t.f = nil
	if err != nil {
		return fmt.Errorf("graph: %w %s: close: %w", ErrWrite, t.dest, err)
	}
	return nil
}

// discard closes and removes the temporary file.
func (t *tempFile) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	os.Remove(t.name)
	unregisterTemp(t.name)
}

// commit renames finished temporary files into place in order, then
// syncs their folders. Files not yet renamed when an error occurs are
// removed.
func commit(files ...*tempFile) error {
	for i, t := range files {
		if err := os.Rename(t.name, t.dest); err != nil {
			for _, rest := range files[i:] {
				rest.discard()
			}
			return fmt.Errorf("graph: %w %s: %w", ErrWrite, t.dest, err)
		}
		unregisterTemp(t.name)
	}
	synced := map[string]bool{}
	for _, t := range files {
		dir := filepath.Dir(t.dest)
		if synced[dir] {
			continue
		}
		synced[dir] = true
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes renames in dir durable. Systems that cannot sync a folder
// report os.ErrInvalid, which is not an error here.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	serr := d.Sync()
	d.Close()
	if serr != nil && !errors.Is(serr, os.ErrInvalid) {
		return fmt.Errorf("graph: %w: sync folder %s: %w", ErrWrite, dir, serr)
	}
	return nil
}

// dataOffsets lays out tensors of the given sizes in a data file, each
// aligned so that it can be memory-mapped (64 bytes; a page from 1 MiB,
// so that its pages can be released on their own), and returns their
// offsets and the file's size.
func dataOffsets(sizes []int) ([]int64, int64) {
	offsets := make([]int64, len(sizes))
	var end int64
	for i, n := range sizes {
		align := int64(64)
		if n >= 1<<20 {
			align = 4096
		}
		end = (end + align - 1) / align * align
		offsets[i] = end
		end += int64(n)
	}
	return offsets, end
}
