package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// Allocation bound for decoding: the worst case per input byte is a
// two-byte empty submessage that becomes a Go struct (a GraphProto in an
// attribute's graph list is about 300 bytes) plus the index entries built
// for it, which measures below 512 bytes; the constant covers the fixed
// cost of an empty model.
const (
	allocPerByte = 512
	allocFixed   = 64 << 10
)

func marshalSeed(t testing.TB, mp *onnx.ModelProto) []byte {
	t.Helper()
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// modelSeeds are small valid models covering the decoder's features:
// plain, nested subgraphs, quantized tensors, MatMulNBits. testdata/fuzz
// adds the first nodes of a fixture (shufflenet) and every tensor
// encoding (typed fields, int4, strings, a sparse initializer).
func modelSeeds(t testing.TB) [][]byte {
	return [][]byte{
		marshalSeed(t, baseProto()),
		marshalSeed(t, nestedIfModel(3)),
		marshalSeed(t, qdqProto()),
		marshalSeed(t, nbitsProto()),
		marshalSeed(t, blockedProto()),
	}
}

// FuzzLoad: decoding arbitrary bytes never panics, and allocates at most
// a fixed multiple of the input size (never in proportion to declared
// dims or lengths).
func FuzzLoad(f *testing.F) {
	for _, s := range modelSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := graph.Parse(data)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(allocPerByte*len(data)+allocFixed) {
			t.Errorf("decoding %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if m != nil {
				t.Error("model returned with an error")
			}
			return
		}
		if m.Graph == nil || m.Proto == nil {
			t.Fatal("accepted model without a graph index")
		}
	})
}

// FuzzCheckLocation: every location CheckLocation accepts stays inside
// the model's folder lexically, and loading a model whose tensor names
// it never reads a file outside the folder, through symlinks or
// otherwise.
func FuzzCheckLocation(f *testing.F) {
	for _, s := range []string{
		"w.bin", "sub/w.bin", "link.bin", "sublink/w.bin", "../outside/w.bin", "a/../../x",
		"/etc/passwd", "", ".", "..", "sub/../w.bin", `..\x`, "C:/x", "sub/./w.bin", "w.bin/",
		"m.onnx", "sub", "...", "sub/..", "\x00", "~/x", "sub//w.bin",
	} {
		f.Add(s)
	}
	// base/model holds the model, an honest data file, a real folder and
	// symlinks pointing outside; base/outside holds a secret whose bytes
	// must never be read.
	base := f.TempDir()
	dir := filepath.Join(base, "model")
	outside := filepath.Join(base, "outside")
	secret := bytes.Repeat([]byte{0xEE}, 48)
	inside := bytes.Repeat([]byte{0x11}, 48)
	for _, d := range []string{dir, outside, filepath.Join(dir, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for p, data := range map[string][]byte{
		filepath.Join(outside, "w.bin"):    secret,
		filepath.Join(dir, "w.bin"):        inside,
		filepath.Join(dir, "sub", "w.bin"): inside,
	} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"link.bin": filepath.Join(outside, "w.bin"), "sublink": outside, "rel.bin": "../outside/w.bin",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			f.Fatal(err)
		}
	}
	modelPath := filepath.Join(dir, "m.onnx")
	f.Fuzz(func(t *testing.T, loc string) {
		if err := graph.CheckLocation(loc); err == nil {
			joined := filepath.Clean(filepath.Join(dir, loc))
			if !strings.HasPrefix(joined, dir+string(filepath.Separator)) {
				t.Fatalf("accepted %q, which resolves to %s outside %s", loc, joined, dir)
			}
			if filepath.IsAbs(loc) || strings.Contains(loc, "\\") {
				t.Fatalf("accepted %q", loc)
			}
		}
		data := marshalSeed(t, externalProto("location", loc))
		if err := os.WriteFile(modelPath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := graph.Load(modelPath)
		if err != nil {
			return
		}
		if graph.CheckLocation(loc) != nil {
			t.Fatalf("Load accepted location %q that CheckLocation refuses", loc)
		}
		raw := m.Graph.Initializer("w").RawData
		if bytes.Equal(raw, secret) {
			t.Fatalf("location %q read the file outside the model's folder", loc)
		}
		// What was read is the start of the file the location names
		// inside the folder (an honest data file, or the model itself).
		want, err := os.ReadFile(filepath.Join(dir, loc))
		if err != nil || len(want) < len(raw) || !bytes.Equal(raw, want[:len(raw)]) {
			t.Fatalf("location %q read bytes that are not from %s", loc, filepath.Join(dir, loc))
		}
	})
}

// FuzzRoundTrip: whatever decodes re-encodes to an equal model, encoding
// twice gives identical bytes, and a save to disk loads back equal.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range modelSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := graph.Parse(data)
		// Load decodes its own buffer differently (raw_data is not
		// copied); it must agree with Parse on every input.
		dir := t.TempDir()
		in := filepath.Join(dir, "in.onnx")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		loaded, lerr := graph.Load(in)
		if (err == nil) != (lerr == nil) {
			t.Fatalf("Parse error %v, Load error %v", err, lerr)
		}
		if err != nil {
			return
		}
		if !proto.Equal(m.Proto, loaded.Proto) {
			t.Fatal("Load and Parse decode different models")
		}
		b1, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded model does not encode: %v", err)
		}
		m2, err := graph.Parse(b1)
		if err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		if !proto.Equal(m.Proto, m2.Proto) {
			t.Fatal("decode(encode(m)) != m")
		}
		b2, err := m2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatal("encoding twice gave different bytes")
		}
		p := filepath.Join(dir, "m.onnx")
		if err := m.Save(p, graph.SaveOptions{}); err != nil {
			t.Fatalf("save: %v", err)
		}
		m3, err := graph.Load(p)
		if err != nil {
			t.Fatalf("saved model does not load: %v", err)
		}
		if !proto.Equal(m.Proto, m3.Proto) {
			t.Fatal("load(save(m)) != m")
		}
		saved, _ := os.ReadFile(p)
		if !bytes.Equal(saved, b1) {
			t.Fatal("Save and Marshal disagree")
		}
	})
}

// FuzzNibble: packing 4-bit values and unpacking them is the identity,
// for signed and unsigned elements, element by element and through the
// INT4/UINT4 codecs.
func FuzzNibble(f *testing.F) {
	f.Add([]byte{0x00, 0x0f, 0x08, 0x07, 0xff}, true)
	f.Add([]byte{0x01, 0x02, 0x03}, false)
	f.Fuzz(func(t *testing.T, in []byte, signed bool) {
		vals := make([]int64, len(in))
		for i, b := range in {
			v := int64(b & 0x0f)
			if signed && v >= 8 {
				v -= 16
			}
			vals[i] = v
		}
		packed := make([]byte, (len(vals)+1)/2)
		for i := range packed {
			packed[i] = 0xA5 // existing bits must be overwritten, not ORed
		}
		for i, v := range vals {
			graph.SetNibble(packed, i, int8(v))
		}
		for i, v := range vals {
			if got := graph.Nibble(packed, i, signed); int64(got) != v {
				t.Fatalf("element %d: packed %d, unpacked %d", i, v, got)
			}
		}
		dt := onnx.TensorProto_UINT4
		if signed {
			dt = onnx.TensorProto_INT4
		}
		raw, err := graph.EncodeInt64(dt, vals)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != (len(vals)+1)/2 {
			t.Fatalf("%d values packed into %d bytes", len(vals), len(raw))
		}
		if len(vals)%2 == 1 && raw[len(raw)-1]>>4 != 0 {
			t.Fatal("padding nibble is not zero")
		}
		back, err := graph.DecodeInt64(dt, raw, int64(len(vals)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if back[i] != vals[i] {
				t.Fatalf("element %d: encoded %d, decoded %d", i, vals[i], back[i])
			}
		}
		tensor := graph.NewTensor("q", dt, []int64{int64(len(vals))}, raw)
		got, err := graph.Int64s(tensor)
		if err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if got[i] != vals[i] {
				t.Fatalf("tensor element %d: %d, want %d", i, got[i], vals[i])
			}
		}
	})
}

// The bound FuzzLoad enforces holds for inputs built to be expensive:
// many empty submessages of the largest kinds.
func TestDecodeAllocationBound(t *testing.T) {
	header := marshalSeed(t, func() *onnx.ModelProto {
		mp := build.New(13).Model
		mp.Graph = nil
		return mp
	}())
	graphField := func(body []byte) []byte {
		return append(append([]byte{}, header...), lenField(0x3a, body)...) // ModelProto.graph
	}
	repeat := func(unit []byte, n int) []byte { return bytes.Repeat(unit, n) }
	cases := map[string][]byte{
		// GraphProto.node (1): empty NodeProto.
		"empty nodes": graphField(repeat([]byte{0x0a, 0x00}, 20000)),
		// GraphProto.initializer (5): empty TensorProto.
		"empty initializers": graphField(repeat([]byte{0x2a, 0x00}, 20000)),
		// NodeProto with one attribute (5) holding an empty graph list
		// entry (11).
		"empty subgraphs": graphField(repeat([]byte{0x0a, 0x04, 0x2a, 0x02, 0x5a, 0x00}, 20000)),
		// GraphProto.value_info (13) → type (2) → tensor_type (1) →
		// shape (2) → many empty dims (1).
		"empty dims": graphField(lenField(0x6a, lenField(0x12, lenField(0x0a, lenField(0x12,
			repeat([]byte{0x0a, 0x00}, 20000)))))),
		// TensorProto.dims (1) declaring 2^40 × 2^40 with one byte of data.
		"huge dims": graphField([]byte{0x2a, 0x10, 0x0a, 0x0c, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
			0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x10, 0x01}),
	}
	for name, data := range cases {
		var err error
		n := allocatedBy(func() { _, err = graph.Parse(data) })
		if n > uint64(allocPerByte*len(data)+allocFixed) {
			t.Errorf("%s: %d bytes allocated %d (%.0f per byte)", name, len(data), n, float64(n)/float64(len(data)))
		}
		t.Logf("%s: %d bytes, %d allocated, err %v", name, len(data), n, err)
	}
}

// lenField encodes a length-delimited field with the given tag byte.
func lenField(tag byte, body []byte) []byte {
	return append(appendVarint([]byte{tag}, uint64(len(body))), body...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
