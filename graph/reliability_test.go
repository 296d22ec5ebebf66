//go:build linux

package graph_test

// The bad-input catalog of RELIABILITY.md, one test per item, and the
// faults while writing. Every case checks four things: an error (never a
// panic or a hang), errors.Is the right sentinel, error text naming the
// offending file, tensor or node, and the input files untouched.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// writeProto writes mp as dir/name without any validation, so that
// broken models can be put on disk.
func writeProto(t *testing.T, dir, name string, mp *onnx.ModelProto) string {
	t.Helper()
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return putFile(t, filepath.Join(dir, name), data)
}

func putFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileState is what "untouched" compares: content, mode and mtime (a
// folder's own mtime is left out: creating and removing a temporary file
// changes it, and its entries are compared one by one).
type fileState struct {
	data  []byte
	mode  fs.FileMode
	mtime time.Time
}

// snapshotDir records every entry of dir (recursively, not following
// symlinks).
func snapshotDir(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode()}
		if !fi.IsDir() {
			st.mtime = fi.ModTime()
		}
		if fi.Mode().IsRegular() {
			if st.data, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		out[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertUntouched fails when any entry of dir differs from before, or
// when entries were added or removed.
func assertUntouched(t *testing.T, dir string, before map[string]fileState) {
	t.Helper()
	after := snapshotDir(t, dir)
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s was removed", p)
		case !bytes.Equal(a.data, b.data) || a.mode != b.mode || !a.mtime.Equal(b.mtime):
			t.Errorf("%s was modified", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

// mustFail checks that err wraps sentinel and mentions every part.
func mustFail(t *testing.T, err, sentinel error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error wrapping %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %q does not wrap %v", err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// loadWithin runs graph.Load and fails the test if it does not return
// within a few seconds (a FIFO opened for reading would block forever).
func loadWithin(t *testing.T, path string) (*graph.Model, error) {
	t.Helper()
	type result struct {
		m   *graph.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := graph.Load(path)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%s) hangs", path)
		return nil, nil
	}
}

// loadCase loads path and checks the error and that dir is untouched.
func loadCase(t *testing.T, dir, path string, sentinel error, parts ...string) {
	t.Helper()
	before := snapshotDir(t, dir)
	_, err := loadWithin(t, path)
	mustFail(t, err, sentinel, parts...)
	assertUntouched(t, dir, before)
}

func fixtureBytes(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "fixtures", "models", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return data
}

// Item 1: not a model.
func TestLoadNotAModel(t *testing.T) {
	dir := t.TempDir()
	real := fixtureBytes(t, "resnet18_w16_op13.onnx")
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty.onnx", nil},
		{"random.onnx", random},
		{"text.onnx", []byte("This is not a model.\nJust some text, line two.\n")},
		{"json.onnx", []byte(`{"ir_version": 8, "graph": {}}`)},
		{"cut-third.onnx", real[:len(real)/3]},
		{"cut-half.onnx", real[:len(real)/2]},
		{"cut-last-byte.onnx", real[:len(real)-1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := putFile(t, filepath.Join(dir, c.name), c.data)
			loadCase(t, dir, p, graph.ErrInvalidModel, c.name)
			_, err := graph.Parse(c.data)
			mustFail(t, err, graph.ErrInvalidModel)
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "model.onnx")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	loadCase(t, dir, sub, graph.ErrInvalidModel, "model.onnx", "directory")
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	loadCase(t, dir, filepath.Join(dir, "absent.onnx"), fs.ErrNotExist, "absent.onnx")
}

// A file that cannot be read. Root reads any file whatever its mode, so
// under root the unreadable file is a FIFO with no writer: opening it for
// reading would block forever, and Load must refuse it instead.
func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		p := filepath.Join(dir, "fifo.onnx")
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		loadCase(t, dir, p, graph.ErrInvalidModel, "fifo.onnx", "not a regular file")
		return
	}
	p := writeProto(t, dir, "secret.onnx", baseProto())
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	loadCase(t, dir, p, fs.ErrPermission, "secret.onnx")
}

// wBytes is w's data as the base model stores it.
func wBytes() []byte { return baseProto().Graph.Initializer[0].RawData }

// Item 2: external data locations that escape or are not regular files.
func TestExternalLocationLexical(t *testing.T) {
	for _, loc := range []string{
		"/etc/passwd", "", ".", "..", "a/../../x", "../w.bin", "a/..", "./w.bin",
		"a//w.bin", "a/./w.bin", "w.bin/", `..\w.bin`, `C:\w.bin`, "c:w.bin", "w\x00.bin",
	} {
		t.Run(loc, func(t *testing.T) {
			if err := graph.CheckLocation(loc); !errors.Is(err, graph.ErrUnsafePath) {
				t.Errorf("CheckLocation(%q) = %v", loc, err)
			}
			dir := t.TempDir()
			putFile(t, filepath.Join(dir, "w.bin"), wBytes())
			p := writeProto(t, dir, "m.onnx", externalProto("location", loc))
			loadCase(t, dir, p, graph.ErrUnsafePath, `"w"`, "m.onnx")
		})
	}
}

func TestExternalLocationFilesystem(t *testing.T) {
	outside := t.TempDir()
	secret := putFile(t, filepath.Join(outside, "w.bin"), wBytes())
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		loc   string
		want  error
		parts []string
	}{
		{"symlink last part inside", func(t *testing.T, dir string) {
			putFile(t, filepath.Join(dir, "real.bin"), wBytes())
			noErr(t, os.Symlink("real.bin", filepath.Join(dir, "w.bin")))
		}, "w.bin", graph.ErrUnsafePath, []string{"symlink", "w.bin"}},
		{"symlink last part outside", func(t *testing.T, dir string) {
			noErr(t, os.Symlink(secret, filepath.Join(dir, "w.bin")))
		}, "w.bin", graph.ErrUnsafePath, []string{"symlink", "w.bin"}},
		{"symlink parent", func(t *testing.T, dir string) {
			noErr(t, os.Symlink(outside, filepath.Join(dir, "sub")))
		}, "sub/w.bin", graph.ErrUnsafePath, []string{"symlink", `"sub"`}},
		{"symlink parent inside", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
			putFile(t, filepath.Join(dir, "real", "w.bin"), wBytes())
			noErr(t, os.Symlink("real", filepath.Join(dir, "sub")))
		}, "sub/w.bin", graph.ErrUnsafePath, []string{"symlink", `"sub"`}},
		{"hard link", func(t *testing.T, dir string) {
			noErr(t, os.Link(secret, filepath.Join(dir, "w.bin")))
		}, "w.bin", graph.ErrUnsafePath, []string{"hard links", "w.bin"}},
		{"fifo", func(t *testing.T, dir string) {
			noErr(t, syscall.Mkfifo(filepath.Join(dir, "w.bin"), 0o644))
		}, "w.bin", graph.ErrUnsafePath, []string{"not a regular file", "w.bin"}},
		{"directory", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(filepath.Join(dir, "w.bin"), 0o755))
		}, "w.bin", graph.ErrUnsafePath, []string{"not a regular file", "w.bin"}},
		{"missing", func(t *testing.T, dir string) {}, "w.bin", fs.ErrNotExist, []string{"w.bin"}},
		{"device", func(t *testing.T, dir string) {
			noErr(t, os.Symlink("/dev/zero", filepath.Join(dir, "w.bin")))
		}, "w.bin", graph.ErrUnsafePath, []string{"w.bin"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			p := writeProto(t, dir, "m.onnx", externalProto("location", c.loc))
			outsideBefore := snapshotDir(t, outside)
			loadCase(t, dir, p, c.want, append([]string{`"w"`, "m.onnx"}, c.parts...)...)
			assertUntouched(t, outside, outsideBefore)
		})
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// smallAlloc bounds what loading a tiny hostile model may allocate: the
// decoded protobuf and indexes of a few nodes are far below it, and any
// allocation driven by the declared dims is far above it.
const smallAlloc = 1 << 20

// Item 3: external data metadata that lies.
func TestExternalMetadataLies(t *testing.T) {
	w := wBytes() // 48 bytes: dims [4, 3] of float
	padded := append(bytes.Repeat([]byte{0}, 16), w...)
	cases := []struct {
		name  string
		kv    []string
		dims  []int64
		parts []string
	}{
		{"unknown key", []string{"location", "w.bin", "sha256", "x"}, nil, []string{"sha256"}},
		{"repeated key", []string{"location", "w.bin", "offset", "0", "offset", "16"}, nil, []string{"offset"}},
		{"no location", []string{"offset", "0"}, nil, []string{"location"}},
		{"negative offset", []string{"location", "w.bin", "offset", "-16"}, nil, []string{"-16"}},
		{"negative length", []string{"location", "w.bin", "length", "-48"}, nil, []string{"-48"}},
		{"non-numeric offset", []string{"location", "w.bin", "offset", "sixteen"}, nil, []string{"sixteen"}},
		{"float offset", []string{"location", "w.bin", "offset", "1e3"}, nil, []string{"1e3"}},
		{"hex length", []string{"location", "w.bin", "length", "0x30"}, nil, []string{"0x30"}},
		{"overflowing offset", []string{"location", "w.bin", "offset", "99999999999999999999"}, nil, []string{"99999999999999999999"}},
		{"offset+length past EOF", []string{"location", "w.bin", "offset", "32", "length", "48"}, nil, []string{"past the end"}},
		{"offset past EOF", []string{"location", "w.bin", "offset", "4611686018427387904"}, nil, []string{"past the end"}},
		{"implicit length past EOF", []string{"location", "w.bin", "offset", "40"}, nil, []string{"past the end"}},
		{"length below dims", []string{"location", "w.bin", "length", "40"}, nil, []string{"length 40", "48"}},
		{"length above dims", []string{"location", "w.bin", "length", "64"}, nil, []string{"length 64", "48"}},
		{"huge dims, small file", []string{"location", "w.bin"}, []int64{1 << 20, 1 << 20}, []string{"past the end"}},
		{"huge dims and length", []string{"location", "w.bin", "length", "4398046511104"}, []int64{1 << 20, 1 << 20}, []string{"past the end"}},
		{"overflowing dims", []string{"location", "w.bin"}, []int64{1 << 40, 1 << 40}, []string{"overflow"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			putFile(t, filepath.Join(dir, "w.bin"), padded)
			mp := externalProto(c.kv...)
			if c.dims != nil {
				mp.Graph.Initializer[0].Dims = c.dims
			}
			p := writeProto(t, dir, "m.onnx", mp)
			var n uint64
			before := snapshotDir(t, dir)
			n = allocatedBy(func() {
				_, err := graph.Load(p)
				mustFail(t, err, graph.ErrInvalidModel, append([]string{`"w"`, "m.onnx"}, c.parts...)...)
			})
			assertUntouched(t, dir, before)
			if n > smallAlloc {
				t.Errorf("allocated %d bytes for a %d-byte data file", n, len(padded))
			}
		})
	}
}

// The honest counterpart of the cases above loads, so that their errors
// come from the lie and not from the set-up.
func TestExternalMetadataHonest(t *testing.T) {
	dir := t.TempDir()
	w := wBytes()
	putFile(t, filepath.Join(dir, "w.bin"), append(bytes.Repeat([]byte{0}, 16), w...))
	p := writeProto(t, dir, "m.onnx", externalProto("location", "w.bin", "offset", "16", "length", "48", "checksum", "ignored"))
	m, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Initializer("w").RawData; !bytes.Equal(got, w) {
		t.Fatalf("w = %v, want %v", got, w)
	}
	if m.External["w"] != "w.bin" {
		t.Fatalf("External = %v", m.External)
	}
}

// Item 4: inline tensors whose dims and data disagree.
func TestTensorDataLies(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		tensor string // the tensor the error must name
		edit   func(mp *onnx.ModelProto)
		parts  []string
	}{
		{"overflowing dims", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{1 << 40, 1 << 40}
		}, []string{"overflow"}},
		{"huge dims", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 20, 1 << 10}
		}, []string{"raw_data has 48 bytes"}},
		{"huge dims in float_data", "w", func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.RawData, w.FloatData = nil, make([]float32, 12)
			w.Dims = []int64{1 << 20, 1 << 20}
		}, []string{"float_data has 12 values"}},
		{"negative dim", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{4, -3}
		}, []string{"negative"}},
		{"raw_data short", "w", func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.RawData = w.RawData[:47]
		}, []string{"47 bytes", "48"}},
		{"raw_data long", "w", func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.RawData = append(w.RawData, 0, 0, 0, 0)
		}, []string{"52 bytes", "48"}},
		{"raw_data and float_data", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].FloatData = make([]float32, 12)
		}, []string{"several data fields", "raw_data", "float_data"}},
		{"float_data and int32_data", "bias", func(mp *onnx.ModelProto) {
			b := mp.Graph.Initializer[1]
			b.RawData, b.FloatData, b.Int32Data = nil, []float32{1, 2, 3}, []int32{1, 2, 3}
		}, []string{"several data fields"}},
		{"float in int64_data", "bias", func(mp *onnx.ModelProto) {
			b := mp.Graph.Initializer[1]
			b.RawData, b.Int64Data = nil, []int64{1, 2, 3}
		}, []string{"int64_data"}},
		{"float_data count", "bias", func(mp *onnx.ModelProto) {
			b := mp.Graph.Initializer[1]
			b.RawData, b.FloatData = nil, []float32{1, 2}
		}, []string{"2 values", "3"}},
		{"no data", "bias", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[1].RawData = nil
		}, []string{"no data"}},
		{"STRING in raw_data", "names", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, &onnx.TensorProto{
				Name: str("names"), DataType: proto.Int32(int32(onnx.TensorProto_STRING)),
				Dims: []int64{2}, RawData: []byte("abcd"),
			})
		}, []string{"STRING", "raw_data"}},
		{"STRING count", "names", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, &onnx.TensorProto{
				Name: str("names"), DataType: proto.Int32(int32(onnx.TensorProto_STRING)),
				Dims: []int64{3}, StringData: [][]byte{[]byte("a")},
			})
		}, []string{"1 strings", "3"}},
		{"unknown element type", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].DataType = proto.Int32(999)
		}, []string{"999"}},
		{"undefined element type", "w", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].DataType = proto.Int32(0)
		}, []string{"element type"}},
		{"int4 packed size", "q", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, &onnx.TensorProto{
				Name: str("q"), DataType: proto.Int32(int32(onnx.TensorProto_INT4)),
				Dims: []int64{5}, RawData: []byte{1, 2}, // 5 nibbles need 3 bytes
			})
		}, []string{"2 bytes", "3"}},
		{"external_data without EXTERNAL", "w", func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.RawData = nil
			w.ExternalData = []*onnx.StringStringEntryProto{{Key: str("location"), Value: str("w.bin")}}
		}, []string{"external_data"}},
		{"bad Constant attribute tensor", "c", func(mp *onnx.ModelProto) {
			mp.Graph.Node = append(mp.Graph.Node, &onnx.NodeProto{
				OpType: str("Constant"), Output: []string{"c"},
				Attribute: []*onnx.AttributeProto{build.Tensor("value",
					graph.NewTensor("c", onnx.TensorProto_FLOAT, []int64{1 << 40}, []byte{0, 0, 0, 0}))},
			})
		}, []string{"raw_data has 4 bytes"}},
		{"bad tensor in a subgraph", "inner", func(mp *onnx.ModelProto) {
			sub := &onnx.GraphProto{Name: str("then"),
				Initializer: []*onnx.TensorProto{graph.NewTensor("inner", onnx.TensorProto_FLOAT, []int64{2}, []byte{1})},
				Output:      []*onnx.ValueInfoProto{build.ValueInfo("inner", onnx.TensorProto_FLOAT, 2)}}
			mp.Graph.Input = append(mp.Graph.Input, build.ValueInfo("cond", onnx.TensorProto_BOOL))
			mp.Graph.Node = append(mp.Graph.Node, &onnx.NodeProto{
				OpType: str("If"), Input: []string{"cond"}, Output: []string{"if_out"},
				Attribute: []*onnx.AttributeProto{
					{Name: str("then_branch"), Type: onnx.AttributeProto_GRAPH.Enum(), G: sub},
					{Name: str("else_branch"), Type: onnx.AttributeProto_GRAPH.Enum(), G: sub},
				},
			})
		}, []string{"1 bytes", "8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mp := baseProto()
			c.edit(mp)
			p := writeProto(t, dir, "m.onnx", mp)
			data, _ := os.ReadFile(p)
			var err error
			before := snapshotDir(t, dir)
			n := allocatedBy(func() { _, err = graph.Load(p) })
			mustFail(t, err, graph.ErrInvalidModel, append([]string{"m.onnx", `"` + c.tensor + `"`}, c.parts...)...)
			assertUntouched(t, dir, before)
			if n > smallAlloc {
				t.Errorf("Load allocated %d bytes for a %d-byte model", n, len(data))
			}
			_, err = graph.Parse(data)
			mustFail(t, err, graph.ErrInvalidModel, `"`+c.tensor+`"`)
		})
	}
}

// Item 5: nesting deeper than the recursion limit is refused while
// decoding; a moderately nested model still loads.
func TestDeepNesting(t *testing.T) {
	dir := t.TempDir()
	ok := writeProto(t, dir, "nested20.onnx", nestedIfModel(20))
	if _, err := graph.Load(ok); err != nil {
		t.Fatalf("20 nested If nodes: %v", err)
	}
	for _, depth := range []int{40, 200, 5000} {
		p := writeProto(t, dir, "deep.onnx", nestedIfModel(depth))
		loadCase(t, dir, p, graph.ErrInvalidModel, "deep.onnx", "recursion")
	}
}

// Item 6: graphs that are not valid DAGs, and broken headers.
func TestGraphStructure(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name  string
		edit  func(mp *onnx.ModelProto)
		parts []string
	}{
		{"cycle", func(mp *onnx.ModelProto) {
			// MatMul reads Relu's output: MatMul → Add → Relu → MatMul.
			mp.Graph.Node[0].Input[0] = mp.Graph.Node[2].Output[0]
		}, []string{"cycle", "MatMul_1"}},
		{"self loop", func(mp *onnx.ModelProto) {
			n := mp.Graph.Node[2]
			n.Input = append(n.Input, n.Output[0])
		}, []string{"cycle", "Relu_3"}},
		{"value produced twice", func(mp *onnx.ModelProto) {
			mp.Graph.Node[1].Output[0] = mp.Graph.Node[0].Output[0]
		}, []string{"MatMul_1_out0", "defined twice"}},
		{"node output shadows an input", func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Output[0] = "x"
		}, []string{`"x"`, "defined twice"}},
		{"node output shadows an initializer", func(mp *onnx.ModelProto) {
			mp.Graph.Node[1].Output[0] = "w"
		}, []string{`"w"`, "defined twice"}},
		{"graph output declared twice", func(mp *onnx.ModelProto) {
			mp.Graph.Output = append(mp.Graph.Output, mp.Graph.Output[0])
		}, []string{"Relu_3_out0", "twice"}},
		{"initializer twice", func(mp *onnx.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, mp.Graph.Initializer[1])
		}, []string{`"bias"`, "twice"}},
		{"graph input twice", func(mp *onnx.ModelProto) {
			mp.Graph.Input = append(mp.Graph.Input, mp.Graph.Input[0])
		}, []string{`"x"`, "twice"}},
		{"dangling input", func(mp *onnx.ModelProto) {
			mp.Graph.Node[1].Input[1] = "ghost"
		}, []string{`"ghost"`, "never defined"}},
		{"dangling input in a subgraph", func(mp *onnx.ModelProto) {
			mp.Graph = nestedIfModel(2).Graph
			mp.Graph.Input = mp.Graph.Input[1:] // drop "cond", which the Ifs read
		}, []string{`"cond"`, "never defined"}},
		{"output never produced", func(mp *onnx.ModelProto) {
			mp.Graph.Output[0].Name = str("nowhere")
		}, []string{`"nowhere"`, "never produced"}},
		{"unknown domain", func(mp *onnx.ModelProto) {
			mp.Graph.Node[2].Domain = str("com.example")
		}, []string{`"Relu_3"`, `"com.example"`}},
		{"unknown domain in a subgraph", func(mp *onnx.ModelProto) {
			mp.Graph = nestedIfModel(3).Graph
			mp.Graph.Node[0].Attribute[0].G.Node[0].Attribute[1].G.Node[0].Domain = str("com.example")
		}, []string{"Identity", `"com.example"`}},
		{"no opset imports", func(mp *onnx.ModelProto) {
			mp.OpsetImport = nil
		}, []string{"opset_import"}},
		{"opset domain imported twice", func(mp *onnx.ModelProto) {
			mp.OpsetImport = append(mp.OpsetImport, &onnx.OperatorSetIdProto{Domain: str("ai.onnx"), Version: proto.Int64(13)})
		}, []string{"twice"}},
		{"no ir_version", func(mp *onnx.ModelProto) {
			mp.IrVersion = nil
		}, []string{"ir_version"}},
		{"no graph", func(mp *onnx.ModelProto) {
			mp.Graph = nil
		}, []string{"no graph"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mp := baseProto()
			c.edit(mp)
			p := writeProto(t, dir, "m.onnx", mp)
			loadCase(t, dir, p, graph.ErrInvalidModel, append([]string{"m.onnx"}, c.parts...)...)
		})
	}
}

// A long chain must not exhaust the stack or take quadratic time.
func TestLongChainLoads(t *testing.T) {
	b := build.New(13)
	v := b.Input("x", onnx.TensorProto_FLOAT, 1)
	for range 200000 {
		v = b.Node("Relu", []string{v})
	}
	b.Output(v, onnx.TensorProto_FLOAT, 1)
	nodes := b.Model.Graph.Node
	for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 { // worst order for the sort
		nodes[i], nodes[j] = nodes[j], nodes[i]
	}
	dir := t.TempDir()
	p := writeProto(t, dir, "chain.onnx", b.Model)
	start := time.Now()
	m, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Nodes) != 200000 || m.Graph.Nodes[0].Input(0) != "x" {
		t.Fatal("chain not sorted")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("loading a 200k-node chain took %v", d)
	}
}

// saveFixture writes the base model (with a weight big enough to be
// moved to a data file) into dir and loads it, optionally with external
// data.
func loadedModel(t *testing.T, dir string, external bool) (*graph.Model, string) {
	t.Helper()
	mp := baseProto()
	m, err := graph.FromProto(mp)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m.onnx")
	if err := m.Save(p, graph.SaveOptions{ExternalData: external, Threshold: 16}); err != nil {
		t.Fatal(err)
	}
	m, err = graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return m, p
}

func TestSaveRefusesToOverwriteInput(t *testing.T) {
	for _, external := range []bool{false, true} {
		dir := t.TempDir()
		m, p := loadedModel(t, dir, external)
		other := t.TempDir()
		noErr(t, os.Link(p, filepath.Join(other, "link.onnx")))
		cases := []struct {
			name string
			path string
			opts graph.SaveOptions
		}{
			{"same path", p, graph.SaveOptions{}},
			{"same path, other spelling", filepath.Join(dir, ".", "..", filepath.Base(dir), "m.onnx"), graph.SaveOptions{}},
			{"hard link to the input", filepath.Join(other, "link.onnx"), graph.SaveOptions{}},
		}
		if external {
			cases = append(cases,
				struct {
					name string
					path string
					opts graph.SaveOptions
				}{"data file named like the input's", filepath.Join(dir, "out.onnx"),
					graph.SaveOptions{ExternalData: true, DataFile: "m.onnx.data"}},
				struct {
					name string
					path string
					opts graph.SaveOptions
				}{"model named like the input's data file", filepath.Join(dir, "m.onnx.data"), graph.SaveOptions{}},
			)
		} else {
			cases = append(cases, struct {
				name string
				path string
				opts graph.SaveOptions
			}{"data file named like the input model", filepath.Join(dir, "out.onnx"),
				graph.SaveOptions{ExternalData: true, DataFile: "m.onnx"}})
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before, otherBefore := snapshotDir(t, dir), snapshotDir(t, other)
				err := m.Save(c.path, c.opts)
				mustFail(t, err, graph.ErrOutputExists, "m.onnx")
				assertUntouched(t, dir, before)
				assertUntouched(t, other, otherBefore)
			})
		}
		// With InPlace the same save goes through and the file still loads
		// to the same model.
		if err := m.Save(p, graph.SaveOptions{InPlace: true}); err != nil {
			t.Fatalf("in place: %v", err)
		}
		m2, err := graph.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m.Proto, m2.Proto) {
			t.Fatal("in-place save changed the model")
		}
	}
}

func TestSaveIntoDirectoryOrMissingFolder(t *testing.T) {
	dir := t.TempDir()
	m, _ := loadedModel(t, dir, false)
	notDir := putFile(t, filepath.Join(dir, "plain"), []byte("x"))
	noErr(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	for _, p := range []string{
		filepath.Join(dir, "sub"),               // a folder
		filepath.Join(notDir, "out.onnx"),       // parent is a file
		filepath.Join(dir, "missing", "x.onnx"), // parent does not exist
		filepath.Join(dir, "sub") + string('/'), // trailing slash, a folder
	} {
		before := snapshotDir(t, dir)
		if err := m.Save(p, graph.SaveOptions{}); err == nil {
			t.Errorf("Save(%s) succeeded", p)
		} else if !strings.Contains(err.Error(), filepath.Base(strings.TrimSuffix(p, "/"))) {
			t.Errorf("Save(%s): error %q does not name the destination", p, err)
		}
		assertUntouched(t, dir, before)
	}
}

// bigModel has one 64 KiB weight and, when smalls > 0, that many 512-byte
// weights that stay inline with the default threshold.
func bigModel(t *testing.T, smalls int) *graph.Model {
	t.Helper()
	m, err := buildBig(smalls)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func buildBig(smalls int) (*graph.Model, error) {
	b := build.New(13)
	v := b.Input("x", onnx.TensorProto_FLOAT, 1, 128)
	w := b.Init("big", []int64{128, 128}, make([]float32, 128*128))
	v = b.Node("MatMul", []string{v, w})
	for i := range smalls {
		vals := make([]float32, 128)
		vals[0] = float32(i)
		c := b.Init(fmt.Sprintf("small%d", i), []int64{128}, vals)
		v = b.Node("Add", []string{v, c})
	}
	b.Output(v, onnx.TensorProto_FLOAT, 1, 128)
	return b.Build()
}

// Disk full while writing: an error, no temporary file left, and what
// was at the destination before is still there, intact. A full disk is
// simulated with RLIMIT_FSIZE, which makes writes past the limit fail
// with EFBIG (the Go runtime ignores SIGXFSZ). The limit applies to the
// whole process, so each save runs in a child process: in this one it
// would also break the test framework's own log writes.
func TestSaveDiskFull(t *testing.T) {
	if spec := os.Getenv("PARE_TEST_DISKFULL"); spec != "" {
		diskFullChild(spec)
		return
	}
	cases := []struct {
		name     string
		smalls   int
		external bool
		limit    int
	}{
		// 64 KiB inline model, 16 KiB allowed: the model write fails.
		{"inline", 0, false, 16 << 10},
		// External: the data file (64 KiB) fails first.
		{"data file", 0, true, 16 << 10},
		// External: the data file fits (64 KiB < 80 KiB) but the main
		// file (200 inline weights of 512 bytes) does not.
		{"main file after data file", 200, true, 80 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.onnx")
			putFile(t, out, []byte("previous model"))
			putFile(t, out+".data", []byte("previous data"))
			before := snapshotDir(t, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^TestSaveDiskFull$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("PARE_TEST_DISKFULL=%s|%d|%v|%d", out, c.smalls, c.external, c.limit))
			got, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, got)
			}
			line, ok := strings.CutPrefix(strings.TrimSpace(string(got)), "save error: ")
			if !ok {
				t.Fatalf("child output %q", got)
			}
			if !strings.Contains(line, "file too large") || !strings.Contains(line, "out.onnx") {
				t.Errorf("error %q: want EFBIG naming out.onnx", line)
			}
			assertUntouched(t, dir, before)
		})
	}
}

// diskFullChild saves bigModel under a file size limit and reports the
// error on stdout, then exits.
func diskFullChild(spec string) {
	var out string
	var smalls, limit int
	var external bool
	parts := strings.Split(spec, "|")
	out = parts[0]
	fmt.Sscan(parts[1], &smalls)
	fmt.Sscan(parts[2], &external)
	fmt.Sscan(parts[3], &limit)
	m, err := buildBig(smalls)
	if err == nil {
		lim := syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}
		if err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err == nil {
			err = m.Save(out, graph.SaveOptions{ExternalData: external})
			if err != nil && !errors.Is(err, syscall.EFBIG) {
				err = fmt.Errorf("not EFBIG: %w", err)
			}
		}
	}
	fmt.Printf("save error: %v\n", err)
	os.Exit(0)
}

// RemoveTemps, which the CLI calls when interrupted, deletes the
// temporary files of a save in progress. The child process starts a save
// of a 64 MB model, calls RemoveTemps as soon as a temporary file shows
// up and exits at once, as an interrupted pare would; a save started
// after the cleanup must fail.
func TestRemoveTempsDuringSave(t *testing.T) {
	if dir := os.Getenv("PARE_TEST_REMOVETEMPS"); dir != "" {
		removeTempsChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRemoveTempsDuringSave$")
	cmd.Env = append(os.Environ(), "PARE_TEST_REMOVETEMPS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "removed ") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func removeTempsChild(dir string) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4096)
	w := b.Init("w", []int64{4096, 4096}, make([]float32, 4096*4096))
	b.Output(b.Node("MatMul", []string{x, w}), onnx.TensorProto_FLOAT, 1, 4096)
	m, err := b.Build()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	done := make(chan error, 1)
	go func() { done <- m.Save(filepath.Join(dir, "m.onnx"), graph.SaveOptions{}) }()
	for {
		select {
		case err := <-done:
			fmt.Println("save finished before a temporary file was seen:", err)
			os.Exit(1)
		default:
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".m.onnx.tmp-*")); len(tmps) > 0 {
			graph.RemoveTemps()
			// Nothing may be written after the cleanup.
			if err := m.Save(filepath.Join(dir, "late.onnx"), graph.SaveOptions{}); err == nil {
				fmt.Println("a save after RemoveTemps succeeded")
				os.Exit(1)
			}
			fmt.Println("removed", tmps)
			os.Exit(0)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// Models whose main file would reach the protobuf limit are written with
// external data without being asked; the decision is exercised with a
// lowered limit.
func TestSaveGoesExternalAtLimit(t *testing.T) {
	old := graph.InlineLimit
	t.Cleanup(func() { graph.InlineLimit = old })
	graph.InlineLimit = 32 << 10

	dir := t.TempDir()
	m := bigModel(t, 0) // 64 KiB of weights
	p := filepath.Join(dir, "m.onnx")
	if err := m.Save(p, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p + ".data")
	if err != nil {
		t.Fatalf("no data file: %v", err)
	}
	if fi.Size() < 64<<10 {
		t.Errorf("data file has %d bytes", fi.Size())
	}
	main, _ := os.Stat(p)
	if main.Size() >= graph.InlineLimit {
		t.Errorf("main file has %d bytes, limit %d", main.Size(), graph.InlineLimit)
	}
	m2, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto, m2.Proto) {
		t.Fatal("model changed")
	}

	// Still too large with every large tensor moved out: refused, nothing
	// written.
	graph.InlineLimit = 1 << 10
	dir2 := t.TempDir()
	before := snapshotDir(t, dir2)
	err = bigModel(t, 10).Save(filepath.Join(dir2, "m.onnx"), graph.SaveOptions{})
	mustFail(t, err, graph.ErrUnsupported, "m.onnx")
	assertUntouched(t, dir2, before)
}

// The same model saved twice gives identical bytes, with no trace of the
// folder it was written to.
func TestSaveDeterministic(t *testing.T) {
	for _, opts := range []graph.SaveOptions{{}, {ExternalData: true, DataFile: "weights.bin", Threshold: 16}} {
		m := bigModel(t, 5)
		var files [2][]byte
		var data [2][]byte
		for i := range files {
			dir := t.TempDir()
			p := filepath.Join(dir, "m.onnx")
			if err := m.Save(p, opts); err != nil {
				t.Fatal(err)
			}
			files[i], _ = os.ReadFile(p)
			if opts.ExternalData {
				data[i], _ = os.ReadFile(filepath.Join(dir, "weights.bin"))
			}
			if bytes.Contains(files[i], []byte(dir)) || bytes.Contains(files[i], []byte(os.TempDir())) {
				t.Error("saved model contains its folder's path")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "m.onnx" && e.Name() != "weights.bin" {
					t.Errorf("stray file %s", e.Name())
				}
			}
		}
		if !bytes.Equal(files[0], files[1]) || !bytes.Equal(data[0], data[1]) {
			t.Errorf("external=%v: two saves differ", opts.ExternalData)
		}
		if len(files[0]) == 0 {
			t.Fatal("empty output")
		}
	}
}

// Load never writes: a successful load leaves the folder as it was.
func TestLoadLeavesInputUntouched(t *testing.T) {
	dir := t.TempDir()
	_, p := loadedModel(t, dir, true)
	before := snapshotDir(t, dir)
	if _, err := graph.Load(p); err != nil {
		t.Fatal(err)
	}
	assertUntouched(t, dir, before)
}

// The counterpart of the domain cases above: operators of a domain pare
// does not know load when the model imports it (they are frozen later,
// not refused), and "ai.onnx" names the default domain.
func TestImportedCustomDomainLoads(t *testing.T) {
	mp := baseProto()
	mp.OpsetImport = append(mp.OpsetImport, &onnx.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(1)})
	mp.Graph.Node[2].Domain = proto.String("com.example")
	mp.Graph.Node[2].OpType = proto.String("FancyRelu")
	mp.Graph.Node[1].Domain = proto.String("ai.onnx")
	p := writeProto(t, t.TempDir(), "custom.onnx", mp)
	m, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Graph.Nodes[2]; n.Domain() != "com.example" || m.Graph.Nodes[1].Domain() != "" {
		t.Fatalf("domains %q, %q", n.Domain(), m.Graph.Nodes[1].Domain())
	}
	if err := graph.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
}
