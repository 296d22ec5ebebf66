package tensor

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"os"
)

// NpyFile is an open .npy file whose rows (slices along axis 0) are read on
// demand with ReadAt, so that a dataset larger than memory can be fed in
// batches. It is safe for concurrent reads.
type NpyFile struct {
	path   string
	f      *os.File
	h      npyHeader
	rowLen int64 // elements per row
}

// OpenNpy opens a .npy file and validates its header against the file
// size. Errors name the file.
func OpenNpy(path string) (*NpyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tensor: %w", err)
	}
	nf, err := openNpy(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return nf, nil
}

func openNpy(path string, f *os.File) (*NpyFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tensor: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tensor: %s: %w: not a regular file", path, ErrFormat)
	}
	h, err := readNpyHeader(bufio.NewReader(io.NewSectionReader(f, 0, st.Size())))
	if err != nil {
		return nil, fmt.Errorf("tensor: %s: %w", path, err)
	}
	if avail := st.Size() - h.dataOffset; h.nbytes > avail {
		return nil, fmt.Errorf("tensor: %s: %w", path,
			formatErr("shape %s of %v needs %d bytes of data, the file has %d", FormatShape(h.shape), h.dtype, h.nbytes, max(avail, 0)))
	}
	nf := &NpyFile{path: path, f: f, h: h, rowLen: 1}
	if len(h.shape) > 0 {
		// Cannot overflow: the whole array's count was checked.
		for _, d := range h.shape[1:] {
			nf.rowLen *= d
		}
	}
	return nf, nil
}

// DType returns the element type.
func (f *NpyFile) DType() DType { return f.h.dtype }

// Shape returns a copy of the array's shape.
func (f *NpyFile) Shape() []int64 { return append([]int64{}, f.h.shape...) }

// Rows returns the size of axis 0 (1 for a scalar).
func (f *NpyFile) Rows() int64 {
	if len(f.h.shape) == 0 {
		return 1
	}
	return f.h.shape[0]
}

// Path returns the file's path.
func (f *NpyFile) Path() string { return f.path }

// Close closes the file.
func (f *NpyFile) Close() error { return f.f.Close() }

// ReadAll reads the whole array.
func (f *NpyFile) ReadAll() (Dense, error) {
	if len(f.h.shape) == 0 {
		r := io.NewSectionReader(f.f, f.h.dataOffset, f.h.nbytes)
		data, err := readElements(r, f.h, f.h.count)
		if err != nil {
			return Dense{}, fmt.Errorf("tensor: %s: %w", f.path, err)
		}
		return Dense{DType: f.h.dtype, Shape: []int64{}, Data: data}, nil
	}
	return f.ReadRows(0, f.Rows())
}

// ReadRows reads rows [start, start+count) along axis 0.
func (f *NpyFile) ReadRows(start, count int64) (Dense, error) {
	if len(f.h.shape) == 0 {
		return Dense{}, fmt.Errorf("tensor: %s: cannot read rows of a scalar", f.path)
	}
	if start < 0 || count < 0 || start > f.Rows()-count {
		return Dense{}, fmt.Errorf("tensor: %s: rows [%d, %d) out of range (%d rows)", f.path, start, start+count, f.Rows())
	}
	h := f.h
	h.count = count * f.rowLen
	h.nbytes = h.count * int64(h.dtype.Size())
	off := f.h.dataOffset + start*f.rowLen*int64(h.dtype.Size())
	data, err := readElements(io.NewSectionReader(f.f, off, h.nbytes), h, h.count)
	if err != nil {
		return Dense{}, fmt.Errorf("tensor: %s: %w", f.path, err)
	}
	shape := f.Shape()
	shape[0] = count
	return Dense{DType: h.dtype, Shape: shape, Data: data}, nil
}

// Batches yields consecutive batches of up to size rows; the last one may
// be shorter. It stops at the first error, which it yields.
func (f *NpyFile) Batches(size int64) iter.Seq2[Dense, error] {
	return func(yield func(Dense, error) bool) {
		if size <= 0 {
			yield(Dense{}, fmt.Errorf("tensor: %s: batch size %d must be positive", f.path, size))
			return
		}
		for at := int64(0); at < f.Rows(); at += size {
			d, err := f.ReadRows(at, min(size, f.Rows()-at))
			if !yield(d, err) || err != nil {
				return
			}
		}
	}
}
