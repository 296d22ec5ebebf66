package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawNpy builds a .npy file by hand with the given version, header dict
// and data bytes, padding the header the way NumPy does.
func rawNpy(major byte, dict string, data []byte) []byte {
	pre := 10
	if major > 1 {
		pre = 12
	}
	pad := (64 - (pre+len(dict)+1)%64) % 64
	head := dict + strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.Write([]byte{major, 0})
	if major == 1 {
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(head))))
	} else {
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(head))))
	}
	b.WriteString(head)
	b.Write(data)
	return b.Bytes()
}

func le32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b, _ = appendEncoded(b, []float32{v}, 0, 1)
	}
	return b
}

// TestWriteNpyMatchesNumPy checks the exact bytes np.save writes for
// np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32).
func TestWriteNpyMatchesNumPy(t *testing.T) {
	d, _ := New([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	var buf bytes.Buffer
	if err := WriteNpy(&buf, d); err != nil {
		t.Fatal(err)
	}
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	want := "\x93NUMPY\x01\x00v\x00" + dict + strings.Repeat(" ", 117-len(dict)) + "\n"
	if got := buf.String()[:128]; got != want {
		t.Errorf("header\n got %q\nwant %q", got, want)
	}
	if !bytes.Equal(buf.Bytes()[128:], le32(1, 2, 3, 4, 5, 6)) {
		t.Error("data bytes differ")
	}
}

func TestNpyRoundTripAllDTypes(t *testing.T) {
	arrays := []Dense{
		{Float32, []int64{2, 2}, []float32{1, -2, 3.5, 0}},
		{Float64, []int64{3}, []float64{1, -2, 1e300}},
		{Float16, []int64{2}, []uint16{0x3c00, 0x7c00}},
		{Int8, []int64{2}, []int8{-128, 127}},
		{Uint8, []int64{1, 2, 1}, []uint8{0, 255}},
		{Int16, []int64{2}, []int16{-32768, 1}},
		{Uint16, []int64{2}, []uint16{65535, 1}},
		{Int32, []int64{1}, []int32{-7}},
		{Uint32, []int64{1}, []uint32{1 << 31}},
		{Int64, []int64{2}, []int64{-1 << 62, 5}},
		{Uint64, []int64{1}, []uint64{1<<64 - 1}},
		{Bool, []int64{3}, []bool{true, false, true}},
		{Float32, []int64{}, []float32{42}},
		{Float32, []int64{0, 4}, []float32{}},
	}
	dir := t.TempDir()
	for i, d := range arrays {
		var buf bytes.Buffer
		if err := WriteNpy(&buf, d); err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if buf.Len()%64 != 0 && d.Len() == 0 {
			t.Errorf("%v: header not 64-aligned", d)
		}
		got, err := ReadNpy(&buf)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip %v: got %#v", d, got)
		}
		path := filepath.Join(dir, "a"+string(rune('a'+i))+".npy")
		if err := WriteNpyFile(path, d); err != nil {
			t.Fatal(err)
		}
		got, err = ReadNpyFile(path)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("file round trip %v: got %#v", d, got)
		}
	}
	if err := WriteNpy(&bytes.Buffer{}, Dense{BFloat16, []int64{1}, []uint16{1}}); err == nil {
		t.Error("WriteNpy accepted bfloat16, which NumPy cannot name")
	}
}

func TestReadNpyHeaderVariants(t *testing.T) {
	data := le32(1, 2, 3, 4, 5, 6)
	tests := []struct {
		name  string
		major byte
		dict  string
		shape []int64
	}{
		{"v1", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", []int64{2, 3}},
		{"v2", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", []int64{2, 3}},
		{"v3", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", []int64{6}},
		{"key order", 1, "{'shape': (3, 2), 'fortran_order': False, 'descr': '<f4'}", []int64{3, 2}},
		{"double quotes", 1, `{"descr": "<f4", "fortran_order": False, "shape": (6,)}`, []int64{6}},
		{"python2 longs", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", []int64{2, 3}},
		{"native order", 1, "{'descr': '=f4', 'fortran_order': False, 'shape': (1, 6), }", []int64{1, 6}},
		{"no spaces", 1, "{'descr':'<f4','fortran_order':False,'shape':(6,)}", []int64{6}},
	}
	for _, tt := range tests {
		got, err := ReadNpy(bytes.NewReader(rawNpy(tt.major, tt.dict, data)))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got.Shape, tt.shape) || !reflect.DeepEqual(got.Data, []float32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("%s: got %v %v", tt.name, got.Shape, got.Data)
		}
	}
}

func TestReadNpyRefuses(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), "bad magic"},
		{"text", []byte("hello, world, this is not numpy"), "bad magic"},
		{"version 4", rawNpy(1, ok, nil)[:6:6], "too short"},
		{"fortran", rawNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", le32(1, 2)), "Fortran"},
		{"big endian", rawNpy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", le32(1, 2)), "big-endian"},
		{"object", rawNpy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", le32(1, 2)), "object"},
		{"unicode", rawNpy(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", le32(1, 2)), "not supported"},
		{"complex", rawNpy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", le32(1, 2)), "not supported"},
		{"structured", rawNpy(1, "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", le32(1, 2)), "structured"},
		{"negative dim", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", nil), "negative"},
		{"overflow", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), "too many"},
		{"too large for f8", rawNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846975,), }", nil), "too large"},
		{"truncated data", rawNpy(1, ok, le32(1)), "data ends"},
		{"huge shape, tiny file", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", le32(1)), "data ends"},
		{"missing key", rawNpy(1, "{'descr': '<f4', 'shape': (2,), }", le32(1, 2)), "fortran_order"},
		{"extra key", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 'y'}", le32(1, 2)), "unexpected header key"},
		{"duplicate key", rawNpy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", le32(1, 2)), "duplicate"},
		{"not a dict", rawNpy(1, "['descr']", nil), "want '{'"},
		{"unterminated", rawNpy(1, "{'descr': '<f4", nil), "unterminated"},
		{"bad dim", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", nil), "want ','"},
		{"trailing", rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", le32(1, 2)), "trailing"},
	}
	v4 := rawNpy(1, ok, le32(1, 2))
	v4[6] = 4
	tests = append(tests, struct {
		name string
		file []byte
		want string
	}{"version 4", v4, "version 4.0"})
	huge := rawNpy(2, ok, nil)
	binary.LittleEndian.PutUint32(huge[8:], 1<<31)
	tests = append(tests, struct {
		name string
		file []byte
		want string
	}{"huge header", huge, "larger than"})
	for _, tt := range tests {
		_, err := ReadNpy(bytes.NewReader(tt.file))
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not ErrFormat", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.want)
		}
	}
}

func TestOpenNpyNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weights_fortran.npy")
	os.WriteFile(path, rawNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", le32(1, 2)), 0o644)
	_, err := ReadNpyFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "Fortran") {
		t.Errorf("error %v does not name the file and the problem", err)
	}
	// A header promising more data than the file holds fails before
	// allocating, with the sizes in the message.
	short := filepath.Join(dir, "short.npy")
	os.WriteFile(short, rawNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", le32(1, 2)), 0o644)
	_, err = OpenNpy(short)
	if err == nil || !strings.Contains(err.Error(), "needs 800000000000 bytes") {
		t.Errorf("short file: %v", err)
	}
	if _, err := OpenNpy(filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenNpy(dir); err == nil {
		t.Error("a directory was accepted")
	}
}

func TestNpyFileBatches(t *testing.T) {
	data := make([]int64, 10*3)
	for i := range data {
		data[i] = int64(i)
	}
	d, _ := New([]int64{10, 3}, data)
	path := filepath.Join(t.TempDir(), "x.npy")
	if err := WriteNpyFile(path, d); err != nil {
		t.Fatal(err)
	}
	f, err := OpenNpy(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Rows() != 10 || f.DType() != Int64 || !reflect.DeepEqual(f.Shape(), []int64{10, 3}) {
		t.Fatalf("header: %d %v %v", f.Rows(), f.DType(), f.Shape())
	}
	var parts []Dense
	var sizes []int64
	for b, err := range f.Batches(4) {
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
		sizes = append(sizes, b.Shape[0])
	}
	if !reflect.DeepEqual(sizes, []int64{4, 4, 2}) {
		t.Errorf("batch sizes %v", sizes)
	}
	all, err := Concat(parts...)
	if err != nil || !reflect.DeepEqual(all, d) {
		t.Errorf("batches concat to %v, %v", all, err)
	}
	mid, err := f.ReadRows(7, 1)
	if err != nil || !reflect.DeepEqual(mid.Data, []int64{21, 22, 23}) {
		t.Errorf("ReadRows(7,1) = %v, %v", mid.Data, err)
	}
	for _, bad := range [][2]int64{{-1, 1}, {9, 2}, {0, 11}, {1 << 62, 1 << 62}} {
		if _, err := f.ReadRows(bad[0], bad[1]); err == nil {
			t.Errorf("ReadRows(%d,%d) accepted", bad[0], bad[1])
		}
	}
	for _, err := range f.Batches(0) {
		if err == nil {
			t.Error("batch size 0 accepted")
		}
	}
}
