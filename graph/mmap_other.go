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

func mapFile(f *os.File, _, _ string) (*mappedFile, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return &mappedFile{file: f, data: data}, nil
}

func releaseMapped([]byte) {}

func mappedAt([]byte) (string, string, int64, bool) { return "", "", 0, false }

func mapModelFile(*os.File, string) ([]byte, bool) { return nil, false }

// canMap: files are read whole here, so spilling would not free memory.
const canMap = false
