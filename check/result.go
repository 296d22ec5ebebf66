package check

import (
	"fmt"
	"strings"
)

// Result is the outcome of Compare. Its JSON form is the output of
// `pare check --json` (schema in docs/CLI.md).
type Result struct {
	Reference  string         `json:"reference"`
	Candidate  string         `json:"candidate"`
	Inputs     string         `json:"inputs"`
	Samples    int64          `json:"samples"`
	Batch      int64          `json:"batch"`
	Thresholds Thresholds     `json:"thresholds"`
	Outputs    []OutputResult `json:"outputs"`
	Accuracy   *Accuracy      `json:"accuracy"`
	// Perplexity is set with Options.Perplexity (pare check --metric ppl).
	Perplexity *Perplexity  `json:"perplexity,omitempty"`
	Gates      []GateResult `json:"gates"`
	Pass       bool         `json:"pass"`
}

// OutputResult holds the metrics of one compared output.
type OutputResult struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	// Shape is the output's shape over the whole dataset (batches
	// concatenated along axis 0).
	Shape []int64 `json:"shape"`
	Metrics
}

// Accuracy is each model's top-1 accuracy against labels.
type Accuracy struct {
	// Output is the output whose argmax over the last axis is the
	// predicted class.
	Output string `json:"output"`
	Labels int64  `json:"labels"`
	Ref    Number `json:"reference"`
	Cand   Number `json:"candidate"`
	// DropPoints is (Ref − Cand)·100.
	DropPoints Number `json:"drop_points"`
}

// Failed returns the gates that did not pass.
func (r *Result) Failed() []GateResult {
	var out []GateResult
	for _, g := range r.Gates {
		if !g.Pass {
			out = append(out, g)
		}
	}
	return out
}

// err returns nil when every gate passed, else ErrFailed wrapped with
// the failed gates named.
func (r *Result) err() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	parts := make([]string, len(failed))
	for i, g := range failed {
		if g.Output != "" {
			parts[i] = fmt.Sprintf("%s on %q (%s)", g.Gate, g.Output, g.Detail)
		} else {
			parts[i] = fmt.Sprintf("%s (%s)", g.Gate, g.Detail)
		}
	}
	return fmt.Errorf("check: %w: %s", ErrFailed, strings.Join(parts, "; "))
}
