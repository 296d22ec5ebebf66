package tensor

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNpzRoundTrip(t *testing.T) {
	arrays := map[string]Dense{
		"input":  {Float32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		"ids":    {Int64, []int64{2}, []int64{7, 8}},
		"mask":   {Bool, []int64{2}, []bool{true, false}},
		"scalar": {Float64, []int64{}, []float64{0.5}},
	}
	dir := t.TempDir()
	for _, compress := range []bool{false, true} {
		path := filepath.Join(dir, "d.npz")
		if err := WriteNpzFile(path, arrays, compress); err != nil {
			t.Fatal(err)
		}
		got, err := ReadNpz(path)
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if !reflect.DeepEqual(got, arrays) {
			t.Errorf("compress=%v: got %v", compress, got)
		}
		// Same arrays, same bytes.
		var a, b bytes.Buffer
		WriteNpz(&a, arrays, compress)
		WriteNpz(&b, arrays, compress)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("compress=%v: output is not deterministic", compress)
		}
	}
}

func TestNpzRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	zipOf := func(entries ...[2]string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, e := range entries {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: zip.Store})
			w.Write([]byte(e[1]))
		}
		zw.Close()
		return buf.Bytes()
	}
	good := string(rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", le32(1)))
	corrupt := zipOf([2]string{"x.npy", good})
	// Flip a data byte inside the stored entry: the CRC check must catch it.
	idx := bytes.LastIndex(corrupt, le32(1))
	corrupt[idx] ^= 0xff

	tests := []struct {
		name, file, want string
	}{
		{"not a zip", write("text.npz", []byte("plain text")), "not a valid .npz"},
		{"bad entry", write("bad.npz", zipOf([2]string{"x.npy", "garbage"})), `array "x"`},
		{"fortran entry", write("f.npz", zipOf([2]string{"w.npy", string(rawNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", le32(1)))})), "Fortran"},
		{"duplicate", write("dup.npz", zipOf([2]string{"x.npy", good}, [2]string{"x", good})), "duplicate"},
		{"trailing", write("trail.npz", zipOf([2]string{"x.npy", good + "junk"})), "trailing"},
		{"crc", write("crc.npz", corrupt), "checksum"},
		{"missing", filepath.Join(dir, "nope.npz"), "nope.npz"},
	}
	for _, tt := range tests {
		_, err := ReadNpz(tt.file)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), filepath.Base(tt.file)) {
			t.Errorf("%s: error %q should name the file and mention %q", tt.name, err, tt.want)
		}
		if tt.name != "missing" && !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not ErrFormat", tt.name, err)
		}
	}
}

// ReadNpzLimited inflates only the arrays and rows asked for, and refuses
// from the header an array whose kept part is over the byte limit.
func TestReadNpzLimited(t *testing.T) {
	x := Dense{Float32, []int64{4, 2}, []float32{1, 2, 3, 4, 5, 6, 7, 8}}
	y := Dense{Int64, []int64{3}, []int64{7, 8, 9}}
	path := filepath.Join(t.TempDir(), "d.npz")
	if err := WriteNpzFile(path, map[string]Dense{"x": x, "y": y}, true); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNpzLimited(path, NpzLimits{Keys: []string{"x"}, MaxRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Dense{"x": {Float32, []int64{2, 2}, []float32{1, 2, 3, 4}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// x whole is 32 bytes, y 24: 40 bytes hold x but not both.
	if _, err := ReadNpzLimited(path, NpzLimits{MaxBytes: 40}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("over the limit: %v, want ErrTooLarge naming y", err)
	}
	if _, err := ReadNpzLimited(path, NpzLimits{MaxBytes: 56}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	keys, err := NpzKeys(path)
	if err != nil || strings.Join(keys, ",") != "x,y" {
		t.Errorf("keys %v, %v", keys, err)
	}
}

// FuzzReadNpz feeds arbitrary bytes as an .npz: never a panic, and what
// is accepted is valid, within the limits, and no more decoded bytes than
// the byte limit.
func FuzzReadNpz(f *testing.F) {
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteNpz(&buf, map[string]Dense{
			"x": {Float32, []int64{2, 2}, []float32{1, 2, 3, 4}},
			"y": {Int64, []int64{1}, []int64{-1}},
		}, compress); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), int64(1), int64(64))
	}
	f.Add([]byte("PK\x03\x04"), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, maxRows, maxBytes int64) {
		maxBytes %= 1 << 16
		if maxBytes < 0 {
			maxBytes = -maxBytes
		}
		maxBytes += 256
		got, err := readNpz(bytes.NewReader(b), int64(len(b)), NpzLimits{MaxRows: maxRows, MaxBytes: maxBytes})
		if err != nil {
			return
		}
		total := 0
		for k, d := range got {
			if err := d.Validate(); err != nil {
				t.Fatalf("array %q: accepted an invalid array: %v", k, err)
			}
			if maxRows > 0 && d.Rank() > 0 && d.Shape[0] > maxRows {
				t.Fatalf("array %q: %d rows, limit %d", k, d.Shape[0], maxRows)
			}
			total += d.Len() * d.DType.Size()
		}
		if int64(total) > maxBytes {
			t.Fatalf("%d decoded bytes, limit %d", total, maxBytes)
		}
	})
}
