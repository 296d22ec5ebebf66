package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runInspectCLI runs the CLI in-process and returns its output and exit code.
func runInspectCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(context.Background(), append([]string{"pare"}, args...))
	return out.String(), exitCode(err)
}

type inspectFixture struct {
	Name           string `json:"name"`
	Path           string `json:"path"`
	OnnxParamElems int64  `json:"onnx_param_elems"`
	SizeBytes      int64  `json:"size_bytes"`
	Kind           string `json:"kind"`
	Inputs         []struct {
		Shape []any `json:"shape"`
	} `json:"inputs"`
}

func inspectManifest(t *testing.T) []inspectFixture {
	t.Helper()
	data, err := os.ReadFile("../../fixtures/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []inspectFixture
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no fixtures in the manifest")
	}
	return entries
}

// symbolicImageSize reports whether one of a fixture's inputs has a
// symbolic size past the batch axis at rank 3 or more (an image of free
// size, a key/value cache of free past length), which MACs depend on.
func symbolicImageSize(f inspectFixture) bool {
	for _, in := range f.Inputs {
		if len(in.Shape) < 3 {
			continue
		}
		for _, d := range in.Shape[1:] {
			if _, sym := d.(string); sym {
				return true
			}
		}
	}
	return false
}

func TestInspectJSONFixtures(t *testing.T) {
	for _, f := range inspectManifest(t) {
		t.Run(f.Name, func(t *testing.T) {
			path := filepath.Join("../../fixtures", f.Path)
			out, code := runInspectCLI(t, "inspect", "--json", path)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, out)
			}
			var res struct {
				Params    *int64 `json:"params"`
				MACs      *int64 `json:"macs"`
				SizeBytes *int64 `json:"size_bytes"`
				Inputs    []struct {
					Name  string `json:"name"`
					Shape []any  `json:"shape"`
				} `json:"inputs"`
				Uncounted []string `json:"macs_uncounted"`
				Unknown   string   `json:"macs_unknown"`
				Nodes     []any    `json:"nodes"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if res.Params == nil || *res.Params != f.OnnxParamElems {
				t.Errorf("params = %v, manifest says %d", res.Params, f.OnnxParamElems)
			}
			switch {
			case symbolicImageSize(f):
				// TestInspectInputShapeMACs counts these with --input-shape.
				if res.Unknown == "" {
					t.Errorf("symbolic image size %v: macs %v reported as known", f.Inputs[0].Shape, res.MACs)
				}
			case res.MACs == nil || *res.MACs <= 0 || len(res.Uncounted) != 0 || res.Unknown != "":
				t.Errorf("macs = %v, uncounted %v, unknown %q", res.MACs, res.Uncounted, res.Unknown)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if res.SizeBytes == nil || *res.SizeBytes != info.Size() {
				t.Errorf("size_bytes = %v, file has %d", res.SizeBytes, info.Size())
			}
			if len(res.Inputs) == 0 || len(f.Inputs) == 0 || fmt.Sprint(res.Inputs[0].Shape) != fmt.Sprint(f.Inputs[0].Shape) {
				t.Errorf("inputs = %+v, manifest declares %+v", res.Inputs, f.Inputs)
			}
			if res.Nodes != nil {
				t.Error("nodes listed without --nodes")
			}
		})
	}
}

func TestInspectNodesAndText(t *testing.T) {
	// The first CNN: the text must show its Conv nodes.
	var path string
	for _, f := range inspectManifest(t) {
		if f.Kind == "cnn" {
			path = filepath.Join("../../fixtures", f.Path)
			break
		}
	}
	if path == "" {
		t.Fatal("no CNN fixture in the manifest")
	}
	out, code := runInspectCLI(t, "inspect", "--json", "--nodes", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	var res struct {
		NodeCount int `json:"node_count"`
		Nodes     []struct {
			Op      string `json:"op"`
			Params  int64  `json:"params"`
			MACs    int64  `json:"macs"`
			Outputs []any  `json:"outputs"`
		} `json:"nodes"`
		MACs int64 `json:"macs"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Nodes) != res.NodeCount || res.NodeCount == 0 {
		t.Fatalf("%d nodes listed, node_count %d", len(res.Nodes), res.NodeCount)
	}
	var sum int64
	for _, n := range res.Nodes {
		sum += n.MACs
	}
	if sum != res.MACs {
		t.Errorf("node MACs sum to %d, macs %d", sum, res.MACs)
	}
	text, code := runInspectCLI(t, "inspect", "--nodes", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, text)
	}
	for _, want := range []string{"params", "MACs", "batch 1", "size", "opsets", "Conv"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"invalid model", []string{"inspect", bad}, exitUnsupported},
		{"no argument", []string{"inspect"}, exitUsage},
		{"two arguments", []string{"inspect", bad, bad}, exitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := runInspectCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (%s)", code, c.code, out)
			}
		})
	}
}

func TestThousandsAndBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 2048: "2.0 KiB", 3 << 20: "3.0 MiB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
}
