//go:build !unix

package graph

import (
	"io"
	"os"
)

// mappedFile holds an external data file's bytes; where memory maps are
// not available it is read whole.
type mappedFile struct {
	file *os.File
	data []byte
}

func mapFile(f *os.File) (*mappedFile, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return &mappedFile{file: f, data: data}, nil
}

func releaseMapped([]byte) {}

func isMapped([]byte) bool { return false }
