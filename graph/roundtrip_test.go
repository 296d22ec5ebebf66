package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// Every fixture survives load → save → load unchanged, inline and with
// external data; saving twice gives identical bytes; the written files
// satisfy the invariants; and onnxruntime computes bit-identical outputs
// from the original and the re-saved files on the fixture's reference
// inputs.
func TestRoundTripFixtures(t *testing.T) {
	if err := ort.Init(""); err != nil {
		t.Fatalf("onnxruntime must be installed for this test (scripts/fetch-onnxruntime.sh): %v", err)
	}
	var written []string // inline re-saved files, for the onnx checker
	root := t.TempDir()  // outlives the subtests, for the checker
	for _, f := range sweeptest.Pick(fixtureManifest(t)) {
		t.Run(f.Name, func(t *testing.T) {
			orig := filepath.Join("..", "fixtures", f.Path)
			m, err := graph.Load(orig)
			if err != nil {
				t.Fatal(err)
			}
			// Load keeps raw_data in the file buffer; Parse copies it.
			// Both must decode the same model.
			data, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			if parsed, err := graph.Parse(data); err != nil || !proto.Equal(parsed.Proto, m.Proto) {
				t.Fatalf("Load and Parse disagree (Parse error %v)", err)
			}
			dir := filepath.Join(root, f.Name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}

			inline := filepath.Join(dir, "inline.onnx")
			again := filepath.Join(dir, "again.onnx")
			m2 := saveLoad(t, m, inline, graph.SaveOptions{})
			saveLoad(t, m2, again, graph.SaveOptions{})
			sameBytes(t, inline, again)
			// Save streams the encoding; it must be Marshal's, byte for byte.
			if enc, err := m.Marshal(); err != nil {
				t.Fatal(err)
			} else if saved, _ := os.ReadFile(inline); !bytes.Equal(saved, enc) {
				t.Fatal("Save and Marshal encode differently")
			}

			extDir := filepath.Join(dir, "ext")
			extDir2 := filepath.Join(dir, "ext2")
			for _, d := range []string{extDir, extDir2} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ext := filepath.Join(extDir, "m.onnx")
			me := saveLoad(t, m, ext, graph.SaveOptions{ExternalData: true})
			if len(me.External) == 0 {
				t.Fatal("no tensor was stored externally")
			}
			// A model loaded with external data keeps it when saved again.
			saveLoad(t, me, filepath.Join(extDir2, "m.onnx"), graph.SaveOptions{})
			sameBytes(t, ext, filepath.Join(extDir2, "m.onnx"))
			sameBytes(t, ext+".data", filepath.Join(extDir2, "m.onnx.data"))

			inputs, err := tensor.ReadNpz(filepath.Join("..", "fixtures", f.RefInputs))
			if err != nil {
				t.Fatalf("reference inputs: %v", err)
			}
			want := runFile(t, orig, inputs)
			for _, p := range []string{inline, ext} {
				got := runFile(t, p, inputs)
				for i := range want {
					if err := bitsEqual(got[i], want[i]); err != nil {
						t.Errorf("%s: output %d differs from the original's: %v", filepath.Base(p), i, err)
					}
				}
			}
			written = append(written, inline)
		})
	}
	checkWithONNX(t, written)
}

// saveLoad saves m to path, checks the invariants of what was written,
// loads it back and checks that it equals m.
func saveLoad(t *testing.T, m *graph.Model, path string, opts graph.SaveOptions) *graph.Model {
	t.Helper()
	if err := m.Save(path, opts); err != nil {
		t.Fatalf("save %s: %v", filepath.Base(path), err)
	}
	back, err := graph.Load(path)
	if err != nil {
		t.Fatalf("reload %s: %v", filepath.Base(path), err)
	}
	if err := graph.CheckInvariants(back); err != nil {
		t.Errorf("%s: %v", filepath.Base(path), err)
	}
	if !proto.Equal(m.Proto, back.Proto) {
		t.Fatalf("%s: reloaded model differs from the saved one", filepath.Base(path))
	}
	return back
}

func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("%s and %s differ (%d and %d bytes)", a, b, len(da), len(db))
	}
}

// runFile runs the model at path (so that external data resolves next to
// it) on inputs, with one thread, and returns all outputs.
func runFile(t *testing.T, path string, inputs map[string]tensor.Dense) []tensor.Dense {
	t.Helper()
	s, err := ort.NewSessionFromFile(path, ort.Options{Threads: 1})
	if err != nil {
		t.Fatalf("onnxruntime session for %s: %v", filepath.Base(path), err)
	}
	defer s.Close()
	outs, err := s.Run(context.Background(), inputs, nil)
	if err != nil {
		t.Fatalf("onnxruntime run of %s: %v", filepath.Base(path), err)
	}
	return outs
}

// bitsEqual compares two arrays bit for bit (NaNs with the same payload
// are equal, -0 and +0 are not).
func bitsEqual(a, b tensor.Dense) error {
	if a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) {
		return fmt.Errorf("%v vs %v", a, b)
	}
	switch x := a.Data.(type) {
	case []float32:
		y := b.Data.([]float32)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return fmt.Errorf("element %d: %v vs %v", i, x[i], y[i])
			}
		}
	case []float64:
		y := b.Data.([]float64)
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return fmt.Errorf("element %d: %v vs %v", i, x[i], y[i])
			}
		}
	default:
		if !reflect.DeepEqual(a.Data, b.Data) {
			return fmt.Errorf("values differ")
		}
	}
	return nil
}

// checkWithONNX runs onnx.checker.check_model(full_check=True) on the
// written files whose opset the Debian python3-onnx knows, where that
// package is installed (RELIABILITY.md); the tests themselves never need
// Python, so without it this only logs.
func checkWithONNX(t *testing.T, paths []string) {
	const python = "/usr/bin/python3"
	if len(paths) == 0 {
		return
	}
	if err := exec.Command(python, "-c", "import onnx").Run(); err != nil {
		t.Logf("python3-onnx not available (%v): onnx.checker not run", err)
		return
	}
	script := `
import sys, onnx
known = onnx.defs.onnx_opset_version()
for p in sys.argv[1:]:
    m = onnx.load(p)
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) > known:
        print("skip", p)
        continue
    onnx.checker.check_model(p, full_check=True)
    print("ok", p)
`
	out, err := exec.Command(python, append([]string{"-c", script}, paths...)...).CombinedOutput()
	if err != nil {
		t.Errorf("onnx.checker: %v\n%s", err, out)
		return
	}
	n := strings.Count(string(out), "ok ")
	if n == 0 {
		t.Errorf("onnx.checker checked no file:\n%s", out)
	}
	t.Logf("onnx.checker(full_check=True) passed on %d of %d re-saved fixtures", n, len(paths))
}
