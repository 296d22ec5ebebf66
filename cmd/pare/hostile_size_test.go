//go:build linux

package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pare-dev/pare/graph"
)

// The hostile size cases run pare in a child process (this test binary,
// re-executed) under a 4 GiB address-space limit, as `ulimit -v` would
// set it: a case that tried to allocate gigabytes would crash there
// instead of slowing the machine down. The parent checks the exit code,
// the time taken and the child's peak resident memory.
//
// The child reports its own peak (VmHWM) into the file named by
// childHWMEnv: the rusage of a child started by vfork, as Go starts
// processes, carries the parent's peak from before the exec, so a
// test process that had grown past the limit in an earlier test would
// fail every case here.
const (
	childEnv     = "PARE_TEST_CHILD"
	childHWMEnv  = "PARE_TEST_CHILD_HWM"
	addressLimit = 4 << 30
	rssLimit     = 1 << 30
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// childMain is main() under the address-space limit.
func childMain(args []string) int {
	lim := syscall.Rlimit{Cur: addressLimit, Max: addressLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 99
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().Run(ctx, append([]string{"pare"}, args...))
	if err != nil {
		graph.RemoveTemps()
		fmt.Fprintf(os.Stderr, "pare: %v\n", err)
	}
	if path := os.Getenv(childHWMEnv); path != "" {
		if status, rerr := os.ReadFile("/proc/self/status"); rerr == nil {
			for line := range strings.Lines(string(status)) {
				if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					os.WriteFile(path, []byte(strings.TrimSuffix(strings.TrimSpace(kb), " kB")), 0o644)
				}
			}
		}
	}
	return exitCode(err)
}

// runChild runs pare args in a child process and returns its exit code,
// stderr and peak RSS in bytes.
func runChild(t *testing.T, timeout time.Duration, args ...string) (int, string, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	hwm := filepath.Join(t.TempDir(), "vmhwm")
	cmd.Env = append(os.Environ(), childEnv+"=1", childHWMEnv+"="+hwm)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pare %v: still running after %v", args, timeout)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("pare %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024 // an upper bound (see childHWMEnv)
	if b, err := os.ReadFile(hwm); err == nil {
		if kb, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			rss = kb * 1024
		}
	}
	return code, stderr.String(), rss
}

// writeBomb writes an .npz whose one array, x of shape [rows 4 8 8]
// float32 zeros, is rows KiB inflated but about a thousandth of that in
// the file. The deflate stream is built by repeating the compressed
// form of one MiB of zeros, which is the same every time once the
// window is full of zeros; the CRC is the real one.
func writeBomb(t *testing.T, path string, rows int64) {
	t.Helper()
	header := []byte("\x93NUMPY\x01\x00")
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 4, 8, 8), }", rows)
	pad := 64 - (10+len(dict)+1)%64
	dict += strings.Repeat(" ", pad) + "\n"
	header = append(header, byte(len(dict)), byte(len(dict)>>8))
	header = append(header, dict...)

	const chunk = 1 << 20
	zeros := make([]byte, chunk)
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	segment := func() []byte {
		comp.Reset()
		fw.Write(zeros)
		fw.Flush()
		return append([]byte{}, comp.Bytes()...)
	}
	fw.Write(header)
	first := segment() // header and the first MiB
	second, third := segment(), segment()
	if !bytes.Equal(second, third) {
		t.Fatal("zero segments do not compress alike")
	}
	data := rows * 4 * 8 * 8 * 4
	if data%chunk != 0 {
		t.Fatalf("data size %d is not a whole number of MiB", data)
	}
	var body bytes.Buffer
	body.Write(first)
	for range data/chunk - 1 {
		body.Write(second)
	}
	comp.Reset()
	fw.Close()
	body.Write(comp.Bytes())

	crc := crc32.Update(0, crc32.IEEETable, header)
	for range data / chunk {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "x.npy", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(body.Len()), UncompressedSize64: uint64(int64(len(header)) + data),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A 4 MB .npz that inflates to 4 GiB: check, which would use every row,
// refuses it from the header; quant inflates only the rows it
// calibrates on. Neither crashes or takes more than 1 GB.
func TestNpzBombBounded(t *testing.T) {
	dir := t.TempDir()
	model := writeModel(t, dir, "m.onnx", convProto())
	bomb := filepath.Join(dir, "bomb.npz")
	writeBomb(t, bomb, 4<<20) // 4 Mi rows of 1 KiB
	if st, err := os.Stat(bomb); err != nil || st.Size() > 8<<20 {
		t.Fatalf("bomb file: %v, %d bytes", err, st.Size())
	}
	out := filepath.Join(dir, "q.onnx")
	recipe := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(recipe, []byte("steps:\n  - check: {inputs: "+bomb+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runOut := filepath.Join(dir, "runs")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"check", model, model, "--inputs", bomb}, exitUsage},
		{[]string{"quant", model, "-o", out, "--calib", bomb, "--calib-samples", "16"}, exitOK},
		{[]string{"run", recipe, "--out", runOut, model}, exitUsage},
		{[]string{"prune", model, "-o", filepath.Join(dir, "p.onnx"), "--ratio", "0.25", "--criterion", "wanda", "--calib", bomb, "--calib-samples", "16"}, exitOK},
	} {
		start := time.Now()
		code, stderr, rss := runChild(t, 60*time.Second, c.args...)
		if code != c.code {
			t.Errorf("pare %v: exit %d, want %d\n%s", c.args, code, c.code, stderr)
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "fatal error") {
			t.Errorf("pare %v: Go runtime crash:\n%s", c.args, stderr)
		}
		if rss > rssLimit {
			t.Errorf("pare %v: peak RSS %d MiB, limit %d MiB", c.args, rss>>20, rssLimit>>20)
		}
		t.Logf("pare %v: exit %d in %v, peak RSS %d MiB", c.args[0], code, time.Since(start).Round(time.Millisecond), rss>>20)
	}
	// The refused pare run leaves no staging folder.
	filepath.WalkDir(runOut, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".partial") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

// Sizes from the user: each over a limit is exit 2 naming the limit,
// at once, in little memory.
func TestUserSizesCapped(t *testing.T) {
	dir := t.TempDir()
	model := writeModel(t, dir, "m.onnx", convProto())
	for _, c := range []struct {
		args  []string
		limit string
	}{
		{[]string{"bench", model, "--batch", "100000000", "--runs", "1", "--warmup", "0"}, "limit of 65536"},
		{[]string{"bench", model, "--runs", "2000000000"}, "limit of 1000000"},
		{[]string{"check", model, model, "--samples", "2000000000"}, "limit of 1048576"},
		{[]string{"check", model, model, "--samples", "1000000"}, "limit of 256 MiB"},
		{[]string{"check", model, model, "--threads", "100000"}, "--threads 100000 is over the limit"},
		{[]string{"check", model, model, "--batch", "1000000000"}, "limit of 65536"},
		{[]string{"bench", model, "--threads", "100000"}, "--threads 100000 is over the limit"},
		{[]string{"quant", model, "-o", filepath.Join(dir, "q.onnx"), "--calib-samples", "2000000000"}, "limit of 1048576"},
	} {
		start := time.Now()
		code, stderr, rss := runChild(t, 30*time.Second, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.limit) {
			t.Errorf("pare %v: exit %d, want %d naming %q\n%s", c.args, code, exitUsage, c.limit, stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("pare %v took %v", c.args, d)
		}
		if rss > rssLimit {
			t.Errorf("pare %v: peak RSS %d MiB", c.args, rss>>20)
		}
	}
}
