//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pare-dev/pare/graph"
)

// The other run is played by flock(2), hence the Unix build tag.
//
// Two pare runs into one --out: the second waits for nothing and
// touches nothing; it fails at once with exit 2 while the first holds
// the folder.
func TestRunConcurrentIntoOneOut(t *testing.T) {
	root, out, recipe, models := safetySetup(t, "m.onnx")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(out, ".pare-run.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	before := besideOut(t, root)
	start := time.Now()
	text, code := runCLI(t, "run", recipe, "--out", out, models[0])
	if code != exitUsage || !strings.Contains(text, "another pare run") {
		t.Errorf("run while --out is held: exit %d:\n%s", code, text)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := os.Stat(filepath.Join(out, "m")); !os.IsNotExist(err) {
		t.Error("the refused run created its directory")
	}
	lock.Close()
	sameTree(t, "refused run", before, besideOut(t, root))

	// Truly concurrent: each run either completes or is refused, at
	// least one completes, and the result is whole.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, codes[i] = runCLI(t, "run", recipe, "--out", out, models[0])
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case exitOK:
			ok++
		case exitUsage:
		default:
			t.Errorf("concurrent run: exit %d", c)
		}
	}
	if ok == 0 {
		t.Errorf("no concurrent run completed: %v", codes)
	}
	if _, err := graph.Load(filepath.Join(out, "m", "prune.onnx")); err != nil {
		t.Errorf("after concurrent runs: %v", err)
	}
	sameTree(t, "concurrent runs", before, besideOut(t, root))
}
