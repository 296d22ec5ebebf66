package report

import (
	"math"
	"time"
)

// Schema is the value of the "schema" field of every report this package
// writes.
const Schema = "pare.report/v1"

// Kinds of report.
const (
	KindRun     = "run"
	KindSummary = "summary"
)

// Step statuses.
const (
	StepDone        = "done"
	StepFailed      = "failed"
	StepSkipped     = "skipped"
	StepInterrupted = "interrupted"
)

// Run statuses: every step done and every gate passed; a gate failed; a
// step failed; the run was interrupted (context cancelled) before it
// finished.
const (
	RunPassed      = "passed"
	RunGateFailed  = "gate-failed"
	RunError       = "error"
	RunInterrupted = "interrupted"
)

// Run is one model (at one sweep setting) taken through a recipe.
type Run struct {
	Schema string `json:"schema"`
	Kind   string `json:"kind"`
	Pare   string `json:"pare"`
	Recipe string `json:"recipe"`
	// Model is the run's name: the model file's base name without .onnx.
	Model string `json:"model"`
	// Input is the model file the run started from.
	Input string `json:"input"`
	// Setting holds the sweep values of this run, "step.option" → value;
	// omitted outside sweeps.
	Setting  []Param  `json:"setting,omitempty"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Started  string   `json:"started"`
	Duration Millis   `json:"duration_ms"`
	Steps    []Step   `json:"steps"`
	Before   Metrics  `json:"before"`
	After    Metrics  `json:"after"`
	Layers   []Layer  `json:"layers,omitempty"`
	Gates    []Gate   `json:"gates"`
	Pass     bool     `json:"pass"`
	Notes    []string `json:"notes,omitempty"`
}

// Param is one sweep value.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Step is one recipe step of a run.
type Step struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Options are the step's options as given (after sweep values).
	Options []Param `json:"options,omitempty"`
	// Output is the model the step wrote, relative to the run directory.
	Output string `json:"output,omitempty"`
	// Files are every file the step wrote, relative to the run directory.
	Files    []string `json:"files,omitempty"`
	Duration Millis   `json:"duration_ms"`
	Error    string   `json:"error,omitempty"`
}

// Metrics are a model's figures; nil fields were not measured.
type Metrics struct {
	Params    *int64 `json:"params"`
	MACs      *int64 `json:"macs"`
	SizeBytes *int64 `json:"size_bytes"`
	// LatencyNs is the median latency at the first batch size benched.
	LatencyNs *int64 `json:"latency_ns"`
	// Accuracy is top-1 accuracy against labels, a fraction.
	Accuracy *float64 `json:"accuracy"`
	// Agreement is the fraction of rows where the model's top-1 class is
	// the reference's (1 for the reference itself).
	Agreement *float64 `json:"agreement"`
	// Cosine is the cosine similarity of the model's output to the
	// reference's.
	Cosine *float64 `json:"cosine"`
}

// Layer is one layer (structured: a coupled channel group) after
// pruning.
type Layer struct {
	Name string `json:"name"`
	// Size and Kept count channels (structured pruning) or weights
	// (unstructured, where Kept is the non-zero count).
	Size     int64   `json:"size"`
	Kept     int64   `json:"kept"`
	Sparsity float64 `json:"sparsity"`
	Frozen   string  `json:"frozen,omitempty"`
	// Kind is the coupled group's kind (channels, heads, mlp, embed,
	// ...) and Sensitivity its measured output error on calibration
	// data (--allocate sensitivity, zeroth), structured pruning only.
	Kind        string   `json:"kind,omitempty"`
	Sensitivity *float64 `json:"sensitivity,omitempty"`
}

// Gate is one recipe gate applied to a run.
type Gate struct {
	Gate      string   `json:"gate"`
	Output    string   `json:"output,omitempty"`
	Value     *float64 `json:"value"`
	Threshold float64  `json:"threshold"`
	Pass      bool     `json:"pass"`
	Detail    string   `json:"detail"`
}

// Summary lists the runs of one recipe.
type Summary struct {
	Schema   string     `json:"schema"`
	Kind     string     `json:"kind"`
	Pare     string     `json:"pare"`
	Recipe   string     `json:"recipe"`
	Status   string     `json:"status"`
	Started  string     `json:"started"`
	Duration Millis     `json:"duration_ms"`
	Runs     []RunEntry `json:"runs"`
}

// RunEntry is a Run in a Summary with where its files are and whether it
// is on its model's Pareto front.
type RunEntry struct {
	// Dir is the run's directory relative to the summary's.
	Dir string `json:"dir"`
	// Pareto is true when no other run of the same model has both fewer
	// or equal MACs and higher or equal quality (accuracy, else
	// agreement), one of them strictly.
	Pareto bool `json:"pareto"`
	Run
}

// Millis is a duration written as whole milliseconds.
type Millis int64

// MillisOf converts d.
func MillisOf(d time.Duration) Millis { return Millis(d.Milliseconds()) }

// NewRun returns a Run with the schema fields set.
func NewRun(pareVersion string) *Run {
	return &Run{Schema: Schema, Kind: KindRun, Pare: pareVersion, Gates: []Gate{}}
}

// NewSummary returns a Summary of runs with the schema fields and the
// Pareto marks set, and the status the worst of the runs'.
func NewSummary(pareVersion, recipe string, runs []RunEntry) *Summary {
	s := &Summary{Schema: Schema, Kind: KindSummary, Pare: pareVersion, Recipe: recipe, Runs: runs, Status: RunPassed}
	MarkPareto(s.Runs)
	for _, r := range runs {
		if severity(r.Status) > severity(s.Status) {
			s.Status = r.Status
		}
	}
	return s
}

func severity(status string) int {
	switch status {
	case RunPassed:
		return 0
	case RunGateFailed:
		return 1
	case RunError:
		return 2
	default:
		return 3
	}
}

// Quality returns the figure a sweep trades against MACs: accuracy when
// the run measured it against labels, else top-1 agreement with the
// reference.
func (m Metrics) Quality() (v float64, name string, ok bool) {
	switch {
	case m.Accuracy != nil:
		return *m.Accuracy, "accuracy", true
	case m.Agreement != nil:
		return *m.Agreement, "top-1 agreement", true
	}
	return 0, "", false
}

// Finite returns &v, or nil for NaN and infinities (which JSON cannot
// hold; a gate's detail still says what was measured).
func Finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
