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

// DefaultNpzMaxBytes bounds the decoded bytes ReadNpz keeps.
const DefaultNpzMaxBytes = 1 << 30

// ErrTooLarge marks data whose declared size is over a limit; it is
// refused from its header, before anything is decompressed.
var ErrTooLarge = errors.New("data too large")

// NpzLimits bound what ReadNpzLimited decodes, so that an archive of a few
// megabytes that inflates to gigabytes (a decompression bomb) is refused
// from the .npy headers, and only the data that is used is inflated.
type NpzLimits struct {
	// Keys, when not nil, names the arrays wanted; other entries are
	// skipped without being decompressed.
	Keys []string
	// MaxRows, when positive, keeps the first MaxRows rows (axis 0) of
	// each array; the rest is never inflated.
	MaxRows int64
	// MaxBytes bounds the decoded bytes kept over all arrays; 0 means
	// DefaultNpzMaxBytes.
	MaxBytes int64
}

// ReadNpz reads every array of an .npz file (a zip of .npy files, stored or
// deflated, as np.savez and np.savez_compressed write). Keys are entry
// names without the ".npy" suffix. Errors name the file and the entry.
// At most DefaultNpzMaxBytes of decoded data are accepted.
func ReadNpz(path string) (map[string]Dense, error) {
	return ReadNpzLimited(path, NpzLimits{})
}

// ReadNpzLimited is ReadNpz within limits: arrays over them are refused
// with ErrTooLarge, naming the array, its declared size and the limit.
// A cut array is not checked against the entry's CRC (that would mean
// inflating all of it).
func ReadNpzLimited(path string, lim NpzLimits) (map[string]Dense, error) {
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
	out, err := readNpz(f, st.Size(), lim)
	if err != nil {
		return nil, fmt.Errorf("tensor: %s: %w", path, err)
	}
	return out, nil
}

// NpzKeys lists the arrays of an .npz file without reading them.
func NpzKeys(path string) ([]string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("tensor: %s: %w: not a valid .npz (zip) file: %v", path, ErrFormat, err)
	}
	defer zr.Close()
	var keys []string
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, "/") {
			keys = append(keys, strings.TrimSuffix(zf.Name, ".npy"))
		}
	}
	return keys, nil
}

func readNpz(r io.ReaderAt, size int64, lim NpzLimits) (map[string]Dense, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid .npz (zip) file: %v", ErrFormat, err)
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultNpzMaxBytes
	}
	out := make(map[string]Dense, len(zr.File))
	seen := map[string]bool{}
	budget := lim.MaxBytes
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		key := strings.TrimSuffix(zf.Name, ".npy")
		if seen[key] {
			return nil, fmt.Errorf("%w: duplicate array %q", ErrFormat, key)
		}
		seen[key] = true
		if lim.Keys != nil && !slices.Contains(lim.Keys, key) {
			continue
		}
		d, err := readNpzEntry(zf, size, lim.MaxRows, &budget, lim.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("array %q: %w", key, err)
		}
		out[key] = d
	}
	return out, nil
}

// readNpzEntry decodes one entry, keeping at most maxRows rows (all when
// maxRows ≤ 0), and takes its decoded size from *budget; limit is the
// whole budget, for the message.
func readNpzEntry(zf *zip.File, archiveSize, maxRows int64, budget *int64, limit int64) (Dense, error) {
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
	cut := false
	if maxRows > 0 && len(h.shape) > 0 && h.shape[0] > maxRows {
		rowElems := int64(1)
		for _, d := range h.shape[1:] {
			rowElems *= d // the header check bounded the full product
		}
		h.shape = append([]int64{maxRows}, h.shape[1:]...)
		h.count = maxRows * rowElems
		h.nbytes = h.count * int64(h.dtype.Size())
		cut = true
	}
	if h.nbytes > *budget {
		return Dense{}, fmt.Errorf("%w: %s %v takes %d bytes, over the limit of %d bytes for data held in memory",
			ErrTooLarge, h.dtype, h.shape, h.nbytes, limit)
	}
	*budget -= h.nbytes
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
	if !cut {
		// Reading to EOF makes archive/zip verify the entry's CRC.
		var one [1]byte
		if n, err := rc.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
			if err != nil && !errors.Is(err, io.EOF) {
				return Dense{}, formatErr("%v", err)
			}
			return Dense{}, formatErr("trailing bytes after the array data")
		}
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
