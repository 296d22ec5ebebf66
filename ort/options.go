package ort

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// OptLevel is onnxruntime's graph optimisation level.
type OptLevel int

// Graph optimisation levels; the zero value is onnxruntime's default, all.
const (
	OptAll OptLevel = iota
	OptExtended
	OptBasic
	OptDisabled
)

// String names the level as onnxruntime's documentation does.
func (l OptLevel) String() string {
	switch l {
	case OptAll:
		return "all"
	case OptExtended:
		return "extended"
	case OptBasic:
		return "basic"
	case OptDisabled:
		return "disabled"
	}
	return fmt.Sprintf("OptLevel(%d)", int(l))
}

// ParseOptLevel parses the names String returns.
func ParseOptLevel(s string) (OptLevel, error) {
	for l := OptAll; l <= OptDisabled; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("ort: unknown optimisation level %q (want all, extended, basic or disabled)", s)
}

// Options configure a session. The zero value is one intra-op thread and
// all graph optimisations.
type Options struct {
	// Threads is the number of intra-op threads; 0 means 1, which keeps
	// benchmarks comparable and results deterministic.
	Threads int
	// OptLevel is the graph optimisation level.
	OptLevel OptLevel
	// ExternalDataDir is where a model given as bytes finds its external
	// data files. Sessions from a file path find them next to the file.
	ExternalDataDir string
	// ProfilePrefix turns on onnxruntime's profiler: closing the session
	// writes PREFIX_<date>.json, one event per node run (kernel, shapes,
	// microseconds). Empty: no profiling.
	ProfilePrefix string
}

func (o Options) threads() int {
	if o.Threads <= 0 {
		return 1
	}
	return o.Threads
}

// sessionOptions builds onnxruntime options; the caller destroys them.
func (o Options) sessionOptions() (*ort.SessionOptions, error) {
	if o.Threads < 0 {
		return nil, fmt.Errorf("ort: %d threads: must be 0 (meaning 1) or more", o.Threads)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	level := map[OptLevel]ort.GraphOptimizationLevel{
		OptAll:      ort.GraphOptimizationLevelEnableAll,
		OptExtended: ort.GraphOptimizationLevelEnableExtended,
		OptBasic:    ort.GraphOptimizationLevelEnableBasic,
		OptDisabled: ort.GraphOptimizationLevelDisableAll,
	}
	lv, ok := level[o.OptLevel]
	if !ok {
		so.Destroy()
		return nil, fmt.Errorf("ort: unknown optimisation level %d", o.OptLevel)
	}
	steps := []func() error{
		func() error { return so.SetIntraOpNumThreads(o.threads()) },
		func() error { return so.SetInterOpNumThreads(1) },
		func() error { return so.SetGraphOptimizationLevel(lv) },
	}
	if o.ExternalDataDir != "" {
		steps = append(steps, func() error {
			return so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", o.ExternalDataDir)
		})
	}
	if o.ProfilePrefix != "" {
		steps = append(steps, func() error { return so.EnableProfiling(o.ProfilePrefix) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("ort: session options: %w", err)
		}
	}
	return so, nil
}
