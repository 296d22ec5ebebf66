package main

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
)

// loadSession opens a model for onnxruntime the way every other command
// opens it: pare's loader reads the file (a regular file only, so a FIFO
// cannot block; external data only from regular files inside the model's
// folder, no symlinks or hard links) and refuses malformed graphs; then
// onnxruntime gets the bytes, never the path, so it cannot read anything
// the loader did not check. A model too large for one protobuf (2 GiB)
// is the exception: onnxruntime opens its path, already vetted.
func loadSession(path string, opts ort.Options) (*ort.Session, *graph.Model, error) {
	m, err := graph.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if int64(proto.Size(m.Proto)) >= graph.InlineLimit {
		s, err := ort.NewSessionFromFile(path, opts)
		return s, m, err
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := ort.NewNamedSession(path, data, opts)
	return s, m, err
}
