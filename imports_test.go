package pare_test

import (
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/pare-dev/pare/"

// layer places each package of the module: a package imports only
// packages of lower layers. docs/ARCHITECTURE.md draws the same graph.
var layer = map[string]int{
	"onnx": 0, "tensor": 0, "progress": 0,
	"ioslice": 1,
	"graph":   2, "ort": 2,
	"graph/build": 3, "grad": 3, "calib": 3, "prune": 3, "upgrade": 3, "report": 3,
	"recovery": 4, "quant": 4, "check": 4,
	"importance": 4,
	"latency":    5,
	"pipeline":   6,
	"pruner":     6,
}

// program is the layer of commands, tools and test helpers (cmd/...,
// bench/..., fixtures/gen/..., internal/crosscheck, and packages named …test such as
// ort/orttest): above every library package, which must not import them.
const program = 9

func layerOf(p string) (int, bool) {
	for _, prefix := range []string{"cmd/", "bench/", "fixtures/gen/", "internal/crosscheck"} {
		if strings.HasPrefix(p, prefix) {
			return program, true
		}
	}
	if strings.Contains(p, "/") && strings.HasSuffix(path.Base(p), "test") {
		return program, true
	}
	l, ok := layer[p]
	return l, ok
}

// forbidden are dependencies, direct or not, a package must not have.
var forbidden = map[string][]string{
	// Pruning's rules need the graph only: no runtime, no calibration.
	"prune": {"ort", "calib", "github.com/yalue/onnxruntime_go"},
	// Quantization stands beside pruning, not above it.
	"quant": {"importance", "prune", "recovery"},
	// Criteria only score; the driver (pruner) selects, compensates,
	// applies and recovers.
	"importance": {"recovery"},
	"graph":      {"ort", "github.com/yalue/onnxruntime_go"},
}

// only lists external packages that one package alone may import.
var only = map[string][]string{
	"github.com/yalue/onnxruntime_go": {"ort"},
	"github.com/urfave/cli/v3":        {"cmd/pare", "pipeline"},
	"gorgonia.org/gorgonia":           {"grad"},
}

// moduleImports reads the non-test imports of every package of the
// module (nested modules and testdata excluded), keyed by path relative
// to the module root; module packages are named the same way.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != "." {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if err != nil || len(pkg.GoFiles) == 0 {
			return nil // no Go files, or only tests
		}
		var imps []string
		for _, imp := range pkg.Imports {
			imps = append(imps, strings.TrimPrefix(imp, module))
		}
		out[filepath.ToSlash(path)] = imps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// violations checks an import graph against the rules above.
func violations(imports map[string][]string) []string {
	var bad []string
	isModule := func(p string) bool { _, ok := imports[p]; return ok }
	pkgs := make([]string, 0, len(imports))
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		lp, ok := layerOf(p)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: no layer (place it in imports_test.go and docs/ARCHITECTURE.md)", p))
			continue
		}
		for _, imp := range imports[p] {
			if li, ok := layerOf(imp); isModule(imp) && ok && li >= lp {
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d)", p, lp, imp, li))
			}
			if allowed, ok := only[imp]; ok && !slices.Contains(allowed, p) {
				bad = append(bad, fmt.Sprintf("%s imports %s (only %s may)", p, imp, strings.Join(allowed, ", ")))
			}
		}
	}
	for p, deny := range forbidden {
		deps := map[string]bool{}
		var walk func(string)
		walk = func(q string) {
			for _, imp := range imports[q] {
				if !deps[imp] {
					deps[imp] = true
					walk(imp)
				}
			}
		}
		walk(p)
		for _, d := range deny {
			if deps[d] {
				bad = append(bad, fmt.Sprintf("%s depends on %s", p, d))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// TestImportRules: the packages import each other as
// docs/ARCHITECTURE.md says.
func TestImportRules(t *testing.T) {
	imports := moduleImports(t)
	for _, p := range []string{"prune", "quant", "ort", "cmd/pare"} {
		if _, ok := imports[p]; !ok {
			t.Fatalf("package %s not found; the walk is broken", p)
		}
	}
	for _, v := range violations(imports) {
		t.Error(v)
	}
}

// TestImportRulesCatchBreaks: each kind of broken rule is reported.
func TestImportRulesCatchBreaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(map[string][]string)
		want string
	}{
		{"prune reaches onnxruntime through calib", func(m map[string][]string) { m["prune"] = append(m["prune"], "calib") }, "prune depends on ort"},
		{"quant imports importance", func(m map[string][]string) { m["quant"] = append(m["quant"], "importance") }, "quant depends on importance"},
		{"upward import", func(m map[string][]string) { m["graph"] = append(m["graph"], "quant") }, "graph (layer 2) imports quant (layer 4)"},
		{"runtime outside ort", func(m map[string][]string) {
			m["check"] = append(m["check"], "github.com/yalue/onnxruntime_go")
		}, "check imports github.com/yalue/onnxruntime_go"},
		{"unplaced package", func(m map[string][]string) { m["newpkg"] = nil }, "newpkg: no layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string][]string{}
			for p, imps := range moduleImports(t) {
				m[p] = slices.Clone(imps)
			}
			tc.edit(m)
			got := violations(m)
			if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, tc.want) }) {
				t.Errorf("violations %q lack %q", got, tc.want)
			}
		})
	}
}
