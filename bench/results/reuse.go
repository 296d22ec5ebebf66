package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// A partial regeneration (-rows) measures the rows it names and copies
// the others' cells from the model's table in the current
// docs/RESULTS.md, so that the default-against-best lines still compare
// with every row.

// rowSelected reports whether -rows asks for the row named name (all
// rows without -rows).
func rowSelected(name string) bool {
	if *rows == "" {
		return true
	}
	for _, s := range strings.Split(*rows, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// previousCells returns the cells of model's table in docs/RESULTS.md,
// by row name (a former "(the default with --calib)" mark dropped), or
// nothing when the allocation section there was measured on other test
// images than testSet (its text names them), so that one table never
// mixes test sets.
func previousCells(model, testSet string) map[string][]string {
	b, err := os.ReadFile(filepath.Join(*root, "docs/RESULTS.md"))
	if err != nil {
		return nil
	}
	doc := string(b)
	s := strings.Index(doc, "## Allocation, compensation and steps\n")
	if s < 0 {
		return nil
	}
	// The section only: other sections have tables of the same models.
	doc = doc[s:]
	if e := strings.Index(doc[3:], "\n## "); e >= 0 {
		doc = doc[:e+3]
	}
	if !strings.Contains(beforeTables(doc), "Top-1 accuracy on "+testSet+",") {
		return nil
	}
	i := strings.Index(doc, "### "+filepath.Base(model)+" ")
	if i < 0 {
		return nil
	}
	doc = doc[i:]
	if j := strings.Index(doc[4:], "\n### "); j >= 0 {
		doc = doc[:j+4]
	}
	out := map[string][]string{}
	for _, line := range strings.Split(doc, "\n") {
		f := strings.Split(strings.Trim(line, "| "), " | ")
		if !strings.HasPrefix(line, "| ") || len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[0], " (the default with --calib)")
		out[name] = f[1:]
	}
	return out
}

// beforeTables returns a section's text up to its first "### " heading.
func beforeTables(section string) string {
	if i := strings.Index(section, "\n### "); i >= 0 {
		return section[:i]
	}
	return section
}

var percent = regexp.MustCompile(`^([0-9.]+)%$`)

// cellAccuracy parses a "91.2%" cell.
func cellAccuracy(c string) (float64, bool) {
	m := percent.FindStringSubmatch(strings.TrimSpace(c))
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v / 100, err == nil
}
