package tensor

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadNpy feeds arbitrary bytes to ReadNpy: it must never panic, and
// whatever it accepts must be a valid array that writes back and reads
// again unchanged.
func FuzzReadNpy(f *testing.F) {
	seeds := []Dense{
		{Float32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{Int64, []int64{1}, []int64{-1}},
		{Bool, []int64{}, []bool{true}},
		{Float16, []int64{2}, []uint16{0x3c00, 0x7e00}},
	}
	for _, d := range seeds {
		var buf bytes.Buffer
		if err := WriteNpy(&buf, d); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(rawNpy(2, "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }", []byte{1, 2}))
	f.Add(rawNpy(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }", nil))
	f.Add(rawNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", nil))
	f.Add(rawNpy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", nil))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ReadNpy(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid array: %v", err)
		}
		// Reading never returns more elements than the input had bytes.
		if d.Len()*d.DType.Size() > len(b) {
			t.Fatalf("%d elements from %d bytes", d.Len(), len(b))
		}
		var out bytes.Buffer
		if err := WriteNpy(&out, d); err != nil {
			t.Fatalf("cannot write back: %v", err)
		}
		again, err := ReadNpy(&out)
		if err != nil {
			t.Fatalf("cannot read back: %v", err)
		}
		if !reflect.DeepEqual(again.Shape, d.Shape) || again.DType != d.DType || again.Len() != d.Len() {
			t.Fatalf("round trip changed %v to %v", d, again)
		}
	})
}
