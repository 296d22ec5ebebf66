package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pare-dev/pare/graph"
)

// ErrWrite marks a report that could not be written.
var ErrWrite = errors.New("cannot write")

// WriteRun writes dir/report.json and dir/report.html.
func WriteRun(dir string, r *Run) error {
	var h bytes.Buffer
	if err := WriteRunHTML(&h, r); err != nil {
		return fmt.Errorf("report: %s: %w", dir, err)
	}
	return writeBoth(dir, r, h.Bytes())
}

// WriteSummary writes dir/report.json and dir/report.html.
func WriteSummary(dir string, s *Summary) error {
	var h bytes.Buffer
	if err := WriteSummaryHTML(&h, s); err != nil {
		return fmt.Errorf("report: %s: %w", dir, err)
	}
	return writeBoth(dir, s, h.Bytes())
}

func writeBoth(dir string, v any, page []byte) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "report.json"), append(js, '\n')); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, "report.html"), page)
}

// WriteFileAtomic writes data to path with graph.WriteFile, the writer
// every file pare writes goes through: a temporary file beside path,
// synced and renamed into place, so that readers see the old file or the
// new one, never a part, and an interrupted pare leaves no temporary
// file.
func WriteFileAtomic(path string, data []byte) error {
	if err := graph.WriteFile(path, data); err != nil {
		return fmt.Errorf("report: %w: %w", ErrWrite, err)
	}
	return nil
}

// ReadRun reads a run's report.json.
func ReadRun(path string) (*Run, error) {
	var r Run
	if err := readJSON(path, &r, KindRun); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReadSummary reads a summary's report.json.
func ReadSummary(path string) (*Summary, error) {
	var s Summary
	if err := readJSON(path, &s, KindSummary); err != nil {
		return nil, err
	}
	return &s, nil
}

func readJSON(path string, v any, kind string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var head struct{ Schema, Kind string }
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	if head.Schema != Schema || head.Kind != kind {
		return fmt.Errorf("report: %s: schema %q kind %q, want %q kind %q", path, head.Schema, head.Kind, Schema, kind)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	return nil
}
