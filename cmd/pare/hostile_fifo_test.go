//go:build unix

package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Named pipes exist only on Unix, hence the build tag.
func TestFIFOModelRefusedByRuntimeCommands(t *testing.T) {
	dir := t.TempDir()
	good := writeModel(t, dir, "good.onnx", convProto())
	fifo := filepath.Join(dir, "fifo.onnx")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", fifo, good},
		{"check", good, fifo},
		{"bench", fifo, "--warmup", "0", "--runs", "1"},
	} {
		if code := withTimeout(t, 10*time.Second, args...); code != exitUnsupported {
			t.Errorf("pare %v: exit %d, want %d", args, code, exitUnsupported)
		}
	}
}

// TestRuntimeCommandsApplyExternalDataRules gives check and bench a model
// whose external data file is a hard link to a file outside the model's
// folder: the loader refuses it, and so must every command that runs
// the model.
