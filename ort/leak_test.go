package ort

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

// TestRunsReleaseMemory runs a model with 1 MiB float32 outputs (one
// plain, one read as float16 through the adapter nodes) 300 times: if
// onnxruntime's values were not destroyed, resident memory would grow by
// about 600 MiB.
func TestRunsReleaseMemory(t *testing.T) {
	m := orttest.Model(
		[]*onnx.NodeProto{
			orttest.Node("Relu", []string{"x"}, []string{"y"}),
			orttest.Node("Cast", []string{"x"}, []string{"h"}, orttest.IntAttr("to", int64(orttest.Float16))),
		}, nil,
		[]*onnx.ValueInfoProto{orttest.Value("x", orttest.Float, "N", 1024)},
		[]*onnx.ValueInfoProto{orttest.Value("y", orttest.Float, "N", 1024), orttest.Value("h", orttest.Float16, "N", 1024)},
	)
	s := openSession(t, m, Options{})
	x, _ := tensor.Zeros(tensor.Float32, []int64{256, 1024})
	feed := map[string]tensor.Dense{"x": x}
	run := func(n int) {
		for range n {
			if _, err := s.Run(ctx, feed, nil); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		debug.FreeOSMemory()
	}
	run(20)
	before := rss(t)
	run(300)
	grow := rss(t) - before
	t.Logf("resident memory grew by %d KiB over 300 runs", grow>>10)
	if grow > 128<<20 {
		t.Errorf("resident memory grew by %d MiB over 300 runs", grow>>20)
	}
}

// rss reads the resident set size from /proc/self/statm.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm on this system")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
