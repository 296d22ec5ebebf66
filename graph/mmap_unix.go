//go:build unix

package graph

import (
	"fmt"
	"os"
	"syscall"
)

// mappedFile is an external data file and its bytes, mapped private
// (copy-on-write): the file is never written through the map, and a
// consumer that edits a tensor's raw bytes in place edits its own copy of
// those pages. The map lives as long as the process: tensors alias it.
type mappedFile struct {
	file *os.File
	data []byte
}

func mapFile(f *os.File) (*mappedFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return &mappedFile{file: f, data: []byte{}}, nil
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("%w: %d-byte file is too large to map", ErrInvalidModel, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return &mappedFile{file: f, data: data}, nil
}
