// Command crosscheck type-checks the module, tests included, for other
// platforms than the one it runs on, without a C cross-compiler.
//
// `GOOS=darwin go vet ./...` cannot do this: most of pare links
// onnxruntime through cgo, and cgo needs the target's C toolchain. Here
// `import "C"` is faked (go/types' FakeImportC), so the Go code of every
// package, cgo packages included, is checked against each target's
// standard library and build tags. What needs C itself is not checked.
//
// Usage: go run ./internal/crosscheck [GOOS/GOARCH ...] (default: the
// platforms README.md lists).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var defaultTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

func main() {
	targets := os.Args[1:]
	if len(targets) == 0 {
		targets = defaultTargets
	}
	failed := false
	for _, t := range targets {
		goos, goarch, ok := strings.Cut(t, "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "crosscheck: %q is not GOOS/GOARCH\n", t)
			os.Exit(2)
		}
		errs, err := check(goos, goarch)
		if err != nil {
			fmt.Fprintf(os.Stderr, "crosscheck: %s: %v\n", t, err)
			os.Exit(2)
		}
		for _, e := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", t, e)
		}
		if len(errs) > 0 {
			failed = true
			continue
		}
		fmt.Printf("%s: ok\n", t)
	}
	if failed {
		os.Exit(1)
	}
}

// listedPackage is the part of `go list -json` output crosscheck uses.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct{ Main bool }
	Error      *struct{ Err string }
}

// check type-checks every package of the module and its tests for goos/
// goarch, with their dependencies, and returns the errors found in the
// module's own packages.
func check(goos, goarch string) ([]error, error) {
	pkgs, err := list(goos, goarch)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	checked := map[string]*types.Package{"unsafe": types.Unsafe}
	var errs []error
	seen := map[string]bool{} // a package and its test variant repeat errors
	// go list -deps lists every package after its dependencies.
	for _, p := range pkgs {
		if p.ImportPath == "unsafe" || strings.HasSuffix(p.ImportPath, ".test") {
			continue
		}
		own := p.Module != nil && p.Module.Main
		if p.Error != nil {
			if own {
				errs = append(errs, errors.New(p.Error.Err))
			}
			continue
		}
		files, err := parse(fset, p)
		if err != nil {
			return nil, err
		}
		conf := types.Config{
			FakeImportC: true,
			// Dependencies only need their exported API.
			IgnoreFuncBodies: !own,
			Importer:         importer{p, checked},
			Sizes:            types.SizesFor("gc", goarch),
			Error: func(err error) {
				if own && !fromFakeC(err) && !seen[err.Error()] {
					seen[err.Error()] = true
					errs = append(errs, err)
				}
			},
		}
		tp, _ := conf.Check(p.ImportPath, fset, files, nil)
		checked[p.ImportPath] = tp
	}
	return errs, nil
}

// fromFakeC reports whether err is about a value whose type is invalid.
// go/types reports no error of its own on such values, as the error that
// made the type invalid was reported first; so they come from a C
// constant or type the fake cgo left untyped, such as onnxruntime_go's
// GraphOptimizationLevelEnableAll = C.ORT_ENABLE_ALL.
func fromFakeC(err error) bool {
	return strings.Contains(err.Error(), "with invalid type")
}

func list(goos, goarch string) ([]listedPackage, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-test", "-json", "./...")
	// CGO_ENABLED=1 keeps the cgo files in the lists; go list runs no C
	// compiler.
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

func parse(fset *token.FileSet, p listedPackage) ([]*ast.File, error) {
	var files []*ast.File
	for _, name := range append(p.GoFiles, p.CgoFiles...) {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// importer resolves the imports of one package among those already
// checked, through its import map (test variants, vendoring).
type importer struct {
	from    listedPackage
	checked map[string]*types.Package
}

func (im importer) Import(path string) (*types.Package, error) {
	if mapped, ok := im.from.ImportMap[path]; ok {
		path = mapped
	}
	if p := im.checked[path]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%s: import %q: not checked", im.from.ImportPath, path)
}
