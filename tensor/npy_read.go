package tensor

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// readChunk is how many bytes are decoded at a time; it also bounds the
// memory committed ahead of data that has actually been read.
const readChunk = 1 << 20

// ReadNpy reads one .npy array from r. Memory grows with the bytes that
// arrive, so a header that claims a huge shape over a short stream fails
// without allocating what it claims.
func ReadNpy(r io.Reader) (Dense, error) {
	h, err := readNpyHeader(r)
	if err != nil {
		return Dense{}, err
	}
	data, err := readElements(r, h, 0)
	if err != nil {
		return Dense{}, err
	}
	return Dense{DType: h.dtype, Shape: h.shape, Data: data}, nil
}

// ReadNpyFile reads a whole .npy file. Errors name the file.
func ReadNpyFile(path string) (Dense, error) {
	f, err := OpenNpy(path)
	if err != nil {
		return Dense{}, err
	}
	defer f.Close()
	return f.ReadAll()
}

// readElements reads h.count elements of h.dtype from r. capHint, when
// positive, is the number of elements known to be available and is
// allocated up front.
func readElements(r io.Reader, h npyHeader, capHint int64) (any, error) {
	var data any
	var err error
	if capHint > 0 {
		if data, err = makeSlice(h.dtype, int(capHint)); err != nil {
			return nil, err
		}
		data = truncate(data)
	} else if data, err = makeSlice(h.dtype, 0); err != nil {
		return nil, err
	}
	buf := make([]byte, min(int64(readChunk), h.nbytes))
	for left := h.nbytes; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, formatErr("data ends after %d of %d bytes", h.nbytes-left, h.nbytes)
		}
		if data, err = appendDecoded(data, h.dtype, buf[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	return data, nil
}

// truncate returns s[:0], keeping its capacity.
func truncate(s any) any {
	switch v := s.(type) {
	case []float32:
		return v[:0]
	case []float64:
		return v[:0]
	case []int8:
		return v[:0]
	case []uint8:
		return v[:0]
	case []int16:
		return v[:0]
	case []uint16:
		return v[:0]
	case []int32:
		return v[:0]
	case []uint32:
		return v[:0]
	case []int64:
		return v[:0]
	case []uint64:
		return v[:0]
	case []bool:
		return v[:0]
	}
	return s
}

// WriteNpy writes d to w in .npy format (version 1.0, or 2.0 when the
// header needs it), little-endian and C order.
func WriteNpy(w io.Writer, d Dense) error {
	if err := d.Validate(); err != nil {
		return err
	}
	head, err := encodeNpyHeader(d.DType, d.Shape)
	if err != nil {
		return err
	}
	n := d.Len()
	// Buffers grow with the array up to readChunk, so small arrays stay cheap.
	step := max(1, min(n, readChunk/d.DType.Size()))
	bw := bufio.NewWriterSize(w, len(head)+step*d.DType.Size())
	if _, err := bw.Write(head); err != nil {
		return err
	}
	buf := make([]byte, 0, step*d.DType.Size())
	for at := 0; at < n; at += step {
		buf, err = appendEncoded(buf[:0], d.Data, at, min(n, at+step))
		if err != nil {
			return err
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteNpyFile writes d to path through a temporary file in the same
// folder, renamed into place once complete.
func WriteNpyFile(path string, d Dense) error {
	return writeAtomic(path, func(w io.Writer) error { return WriteNpy(w, d) })
}

func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(dirOf(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tensor: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("tensor: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("tensor: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("tensor: write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("tensor: write %s: %w", path, err)
	}
	return nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}
