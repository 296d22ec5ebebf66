package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/internal/sweeptest"
	"github.com/pare-dev/pare/tensor"
)

const fixtureRoot = "../../fixtures"

type opsetFixture struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Opset  int64  `json:"opset"`
	Inputs []struct {
		Shape []any `json:"shape"`
	} `json:"inputs"`
}

// fmnistFixtures returns the Fashion-MNIST fixtures (every opset and
// exporter style), which have real calibration and held-out images.
func fmnistFixtures(t *testing.T) []opsetFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all, out []opsetFixture
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if strings.HasPrefix(f.Name, "fmnist_") {
			out = append(out, f)
		}
	}
	if len(out) < 6 {
		t.Fatalf("%d Fashion-MNIST fixtures in the manifest", len(out))
	}
	return out
}

// imagesFor writes rows [0, n) of a Fashion-MNIST image file in the
// layout the fixture reads: NCHW, or NHWC for the tf2onnx-style model
// (the same bytes, one channel).
func imagesFor(t *testing.T, f opsetFixture, src string, n int64) string {
	t.Helper()
	d, err := tensor.ReadNpyFile(filepath.Join(fixtureRoot, "data", src))
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.Slice(0, min(n, d.Rows())); err != nil {
		t.Fatal(err)
	}
	if s := f.Inputs[0].Shape; len(s) == 4 && s[3] == float64(1) {
		d.Shape = []int64{d.Shape[0], d.Shape[2], d.Shape[3], d.Shape[1]}
	}
	path := filepath.Join(t.TempDir(), src)
	if err := tensor.WriteNpyFile(path, d); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every Fashion-MNIST fixture, at every opset and from every exporter
// style, quantizes to per-channel QDQ (upgraded to 13 when older, and
// reported), per-tensor QDQ (on its own opset, 10 at least) and dynamic
// int8 (Convs through ConvInteger); each model runs in onnxruntime, is
// smaller than the input and keeps cosine ≥ 0.99 with the float model on
// 200 held-out test images.
func TestQuantEveryOpsetFixture(t *testing.T) {
	formats := []struct {
		name      string
		args      []string
		needOpset int64 // the opset the format upgrades to, at least
		keepOpset bool  // the model's own opset is kept when it suffices
	}{
		{"qdq", []string{"--format", "qdq"}, 13, false},
		{"qdq-per-tensor", []string{"--format", "qdq", "--per-channel=false"}, 10, true},
		{"dynamic", []string{"--format", "dynamic"}, 11, true},
	}
	for _, f := range sweeptest.Pick(fmnistFixtures(t)) {
		t.Run(f.Name, func(t *testing.T) {
			model := filepath.Join(fixtureRoot, f.Path)
			calib := imagesFor(t, f, "fmnist_calib_x.npy", 128)
			held := imagesFor(t, f, "fmnist_test_x.npy", 200)
			for _, fm := range formats {
				out := filepath.Join(t.TempDir(), fm.name+".onnx")
				args := append([]string{"quant", model, "-o", out, "--calib", calib, "--json"}, fm.args...)
				stdout, code := runPare(t, args...)
				if code != 0 {
					t.Fatalf("%s: exit %d", fm.name, code)
				}
				var res struct {
					SizeBefore int64 `json:"size_before_bytes"`
					SizeAfter  int64 `json:"size_after_bytes"`
					Layers     []any `json:"layers"`
					Upgrade    *struct {
						From, To int64
					} `json:"opset_upgrade"`
				}
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatal(err)
				}
				if res.SizeAfter >= res.SizeBefore || len(res.Layers) == 0 {
					t.Errorf("%s: %d layers, %d → %d bytes", fm.name, len(res.Layers), res.SizeBefore, res.SizeAfter)
				}
				m, err := graph.Load(out)
				if err != nil {
					t.Fatal(err)
				}
				// Weights kept in Constant nodes stay in that form.
				if orig, err := graph.Load(model); err != nil {
					t.Fatal(err)
				} else if len(orig.Graph.Proto.Initializer) == 0 && len(m.Graph.Proto.Initializer) != 0 {
					t.Errorf("%s: %d initializers in a model that kept every constant in Constant nodes", fm.name, len(m.Graph.Proto.Initializer))
				}
				want := max(f.Opset, fm.needOpset)
				if !fm.keepOpset && f.Opset < fm.needOpset {
					want = fm.needOpset
				}
				if got := m.OpsetVersion(""); got != want {
					t.Errorf("%s: written at opset %d, want %d", fm.name, got, want)
				}
				if upgraded := f.Opset < want; upgraded != (res.Upgrade != nil) ||
					(upgraded && (res.Upgrade.From != f.Opset || res.Upgrade.To != want)) {
					t.Errorf("%s: opset_upgrade %+v for %d → %d", fm.name, res.Upgrade, f.Opset, want)
				}
				stdout, code = runPare(t, "check", model, out, "--inputs", held, "--min-cos", "0.99", "--json")
				var chk struct {
					Outputs []struct {
						Cosine float64 `json:"cosine"`
						Top1   float64 `json:"top1"`
					} `json:"outputs"`
				}
				if err := json.Unmarshal([]byte(stdout), &chk); err != nil || len(chk.Outputs) == 0 {
					t.Fatalf("%s: check output %q: %v", fm.name, stdout, err)
				}
				t.Logf("%-15s opset %d→%d, %d layers, size %.2f×, cosine %.5f, top-1 agreement %.3f",
					fm.name, f.Opset, want, len(res.Layers), float64(res.SizeBefore)/float64(res.SizeAfter),
					chk.Outputs[0].Cosine, chk.Outputs[0].Top1)
				if code != 0 {
					t.Errorf("%s: pare check exit %d (cosine %.5f < 0.99?)", fm.name, code, chk.Outputs[0].Cosine)
				}
			}
		})
	}
}

// refShapes are --input-shape entries for every array of a fixture's
// reference inputs.
func refShapes(t *testing.T, path string) []string {
	t.Helper()
	arrays, err := tensor.ReadNpz(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(arrays)) {
		dims := make([]string, len(arrays[name].Shape))
		for i, d := range arrays[name].Shape {
			dims[i] = strconv.FormatInt(d, 10)
		}
		out = append(out, name+"="+strings.Join(dims, ","))
	}
	return out
}

// A run asked to change the model that would change nothing exits 3 and
// writes nothing; prune --ratio 0 asks for nothing and writes the same
// bytes.
func TestNothingChangedIsRefused(t *testing.T) {
	model := filepath.Join(fixtureRoot, "models", "fmnist_resnet_op13.onnx")
	dir := t.TempDir()
	cases := [][]string{
		{"quant", "--format", "dynamic", "--exclude", ".*"},
		{"quant", "--format", "nbits", "--bits", "4", "--exclude", "fc|Gemm|MatMul"},
		{"prune", "--ratio", "0.001"},
	}
	for i, c := range cases {
		out := filepath.Join(dir, strings.Join(c[:2], "_")+string(rune('a'+i))+".onnx")
		args := append([]string{c[0], model, "-o", out}, c[1:]...)
		if _, code := runPare(t, args...); code != exitUnsupported {
			t.Errorf("%v: exit %d, want %d", c, code, exitUnsupported)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: wrote %s", c, out)
		}
	}
	out := filepath.Join(dir, "ratio0.onnx")
	if _, code := runPare(t, "prune", model, "-o", out, "--ratio", "0"); code != 0 {
		t.Fatalf("prune --ratio 0: exit %d", code)
	}
	a, _ := os.ReadFile(model)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Error("prune --ratio 0 changed the bytes")
	}
}

// The other fixtures (untrained architectures, transformers, decoders,
// other exporters) in per-channel QDQ and dynamic int8, calibrated on
// their reference inputs: each model runs, is smaller than the input and
// keeps cosine ≥ 0.99 with the float model on held-out synthetic inputs.
// A model of several inputs gets them synthesised at its reference
// inputs' sizes (--input-shape): a key/value cache's past and its mask
// must agree in length, which free sizes do not.
func TestQuantOtherFixturesHeldOut(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(fixtureRoot, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	type manifestEntry struct {
		Name      string `json:"name"`
		Path      string `json:"path"`
		RefInputs string `json:"ref_inputs"`
	}
	var all []manifestEntry
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	all = slices.DeleteFunc(all, func(f manifestEntry) bool {
		return strings.HasPrefix(f.Name, "fmnist_") // TestQuantEveryOpsetFixture, on real images
	})
	n := 0
	for _, f := range sweeptest.Pick(all) {
		n++
		t.Run(f.Name, func(t *testing.T) {
			model := filepath.Join(fixtureRoot, f.Path)
			for _, format := range []string{"qdq", "dynamic"} {
				out := filepath.Join(t.TempDir(), format+".onnx")
				stdout, code := runPare(t, "quant", model, "-o", out, "--format", format,
					"--calib", filepath.Join(fixtureRoot, f.RefInputs), "--json")
				if code != 0 {
					t.Fatalf("%s: exit %d", format, code)
				}
				var res struct {
					SizeBefore int64 `json:"size_before_bytes"`
					SizeAfter  int64 `json:"size_after_bytes"`
				}
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatal(err)
				}
				if res.SizeAfter >= res.SizeBefore {
					t.Errorf("%s: %d → %d bytes", format, res.SizeBefore, res.SizeAfter)
				}
				args := []string{"check", model, out, "--seed", "11", "--samples", "4", "--min-cos", "0.99", "--json"}
				if shapes := refShapes(t, filepath.Join(fixtureRoot, f.RefInputs)); len(shapes) > 1 {
					args = append(args, "--input-shape", strings.Join(shapes, ";"))
				}
				stdout, code = runPare(t, args...)
				var chk struct {
					Outputs []struct {
						Cosine float64 `json:"cosine"`
					} `json:"outputs"`
				}
				if err := json.Unmarshal([]byte(stdout), &chk); err != nil || len(chk.Outputs) == 0 {
					t.Fatalf("%s: check output %q: %v", format, stdout, err)
				}
				t.Logf("%-8s size %.2f×, cosine %.5f", format, float64(res.SizeBefore)/float64(res.SizeAfter), chk.Outputs[0].Cosine)
				if code != 0 {
					t.Errorf("%s: pare check exit %d", format, code)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no fixtures besides Fashion-MNIST")
	}
}
