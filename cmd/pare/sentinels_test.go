package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEverySentinelMapped: every exported sentinel error a library
// package declares (var ErrX = ...) has its line in exitMappings, so its
// exit code is chosen, not defaulted.
func TestEverySentinelMapped(t *testing.T) {
	table, err := os.ReadFile("exitcode.go")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^(?:var |\t)(Err[A-Z]\w*)\s+= `)
	files, err := filepath.Glob("../../*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		pkg := filepath.Base(filepath.Dir(f))
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllSubmatch(b, -1) {
			found++
			if name := pkg + "." + string(m[1]); !strings.Contains(string(table), "{"+name+",") {
				t.Errorf("%s (%s) has no line in exitMappings", name, f)
			}
		}
	}
	if found < 20 {
		t.Fatalf("found %d sentinels; the scan is broken", found)
	}
}
