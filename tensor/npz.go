package tensor

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// ReadNpz reads every array of an .npz file (a zip of .npy files, stored or
// deflated, as np.savez and np.savez_compressed write). Keys are entry
// names without the ".npy" suffix. Errors name the file and the entry.
func ReadNpz(path string) (map[string]Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tensor: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tensor: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tensor: %s: %w: not a regular file", path, ErrFormat)
	}
	out, err := readNpz(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("tensor: %s: %w", path, err)
	}
	return out, nil
}

func readNpz(r io.ReaderAt, size int64) (map[string]Dense, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid .npz (zip) file: %v", ErrFormat, err)
	}
	out := make(map[string]Dense, len(zr.File))
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		key := strings.TrimSuffix(zf.Name, ".npy")
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%w: duplicate array %q", ErrFormat, key)
		}
		d, err := readNpzEntry(zf, size)
		if err != nil {
			return nil, fmt.Errorf("array %q: %w", key, err)
		}
		out[key] = d
	}
	return out, nil
}

func readNpzEntry(zf *zip.File, archiveSize int64) (Dense, error) {
	if zf.Method != zip.Store && zf.Method != zip.Deflate {
		return Dense{}, formatErr("zip compression method %d is not supported", zf.Method)
	}
	rc, err := zf.Open()
	if err != nil {
		return Dense{}, formatErr("%v", err)
	}
	defer rc.Close()
	h, err := readNpyHeader(rc)
	if err != nil {
		return Dense{}, err
	}
	// Stored entries cannot hold more bytes than the archive, so their
	// size can be allocated up front; deflated ones grow as data arrives.
	var hint int64
	if zf.Method == zip.Store && h.nbytes <= archiveSize {
		hint = h.count
	}
	data, err := readElements(rc, h, hint)
	if err != nil {
		return Dense{}, err
	}
	// Reading to EOF makes archive/zip verify the entry's CRC.
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return Dense{}, formatErr("%v", err)
		}
		return Dense{}, formatErr("trailing bytes after the array data")
	}
	return Dense{DType: h.dtype, Shape: h.shape, Data: data}, nil
}

// WriteNpz writes arrays as an .npz file in name order, so the same arrays
// always give the same bytes. compress selects deflate (np.savez_compressed)
// over store (np.savez).
func WriteNpz(w io.Writer, arrays map[string]Dense, compress bool) error {
	zw := zip.NewWriter(w)
	names := make([]string, 0, len(arrays))
	for k := range arrays {
		names = append(names, k)
	}
	slices.Sort(names)
	method := zip.Store
	if compress {
		method = zip.Deflate
	}
	for _, name := range names {
		fw, err := zw.CreateHeader(&zip.FileHeader{
			Name:     name + ".npy",
			Method:   method,
			Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			return err
		}
		if err := WriteNpy(fw, arrays[name]); err != nil {
			return fmt.Errorf("tensor: array %q: %w", name, err)
		}
	}
	return zw.Close()
}

// WriteNpzFile writes arrays to path through a temporary file renamed into
// place once complete.
func WriteNpzFile(path string, arrays map[string]Dense, compress bool) error {
	return writeAtomic(path, func(w io.Writer) error { return WriteNpz(w, arrays, compress) })
}
