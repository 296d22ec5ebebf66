package graph

import (
	"fmt"
	"os"
	"strings"
)

// FileFigures are what a model file measures without running it.
type FileFigures struct {
	// SizeBytes is the size on disk, external data files included.
	SizeBytes int64
	// Params and MACs are nil when the model could not be counted;
	// CountError says why.
	Params, MACs *int64
	CountError   string
}

// MeasureFile measures a model file: size on disk, and parameters and
// MACs when the model loads and counts. A model it cannot load or count
// still gets its size; only a file that cannot be read is an error.
func MeasureFile(path string) (FileFigures, error) { return MeasureFileWith(path, nil) }

// MeasureFileWith is MeasureFile with input sizes fixed for counting
// (Model.SetInputShapes). MACs are unknown (nil) while an image or
// feature size is symbolic.
func MeasureFileWith(path string, shapes map[string][]int64) (FileFigures, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FileFigures{}, err
	}
	f := FileFigures{SizeBytes: st.Size()}
	m, err := Load(path)
	if err != nil {
		f.CountError = err.Error()
		return f, nil
	}
	if disk, err := DiskUsageOf(m, path); err == nil {
		f.SizeBytes = disk.Total()
	}
	if len(shapes) > 0 {
		if err := m.SetInputShapes(shapes); err != nil {
			f.CountError = err.Error()
			return f, nil
		}
	}
	c, err := Count(m)
	if err != nil {
		f.CountError = err.Error()
		return f, nil
	}
	f.Params = &c.Params
	switch sym := m.SymbolicSizes(); {
	case len(sym) > 0:
		f.CountError = fmt.Sprintf("MACs unknown: symbolic input sizes %s (give --input-shape)", strings.Join(sym, ", "))
	case len(c.Uncounted) == 0:
		f.MACs = &c.MACs
	default:
		f.CountError = fmt.Sprintf("MACs unknown for %d node(s), e.g. %s", len(c.Uncounted), c.Uncounted[0])
	}
	return f, nil
}
