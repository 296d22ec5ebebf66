package graph

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// DiskUsage is the space a model takes in files.
type DiskUsage struct {
	ModelBytes    int64    `json:"model_file_bytes"`
	ExternalBytes int64    `json:"external_data_bytes"`
	ExternalFiles []string `json:"external_data_files"`
}

// Total returns the model file plus its external data files.
func (d DiskUsage) Total() int64 { return d.ModelBytes + d.ExternalBytes }

// DiskUsageOf measures the model file at path and the external data
// files m was loaded from (each counted once).
func DiskUsageOf(m *Model, path string) (DiskUsage, error) {
	info, err := os.Stat(path)
	if err != nil {
		return DiskUsage{}, fmt.Errorf("graph: %w", err)
	}
	d := DiskUsage{ModelBytes: info.Size(), ExternalFiles: []string{}}
	for _, f := range m.External {
		if !slices.Contains(d.ExternalFiles, f) {
			d.ExternalFiles = append(d.ExternalFiles, f)
		}
	}
	slices.Sort(d.ExternalFiles)
	for _, f := range d.ExternalFiles {
		info, err := os.Stat(filepath.Join(m.Dir, f))
		if err != nil {
			return DiskUsage{}, fmt.Errorf("graph: external data: %w", err)
		}
		d.ExternalBytes += info.Size()
	}
	return d, nil
}
