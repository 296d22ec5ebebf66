package check

import (
	"fmt"
	"math"
	"strconv"
)

// Default allclose tolerances, used when no threshold is given. They sit
// above float32 reordering noise (fused kernels, different thread counts)
// for activations of order one, so a model compared with an equivalent
// rewrite of itself passes, while a changed weight does not.
const (
	DefaultATol = 1e-4
	DefaultRTol = 1e-3
)

// Gate names, as they appear in results and messages.
const (
	GateAllClose   = "allclose"
	GateMinCos     = "min-cos"
	GateMinTop1    = "min-top1"
	GateMaxAccDrop = "max-acc-drop"
	GateMaxPPL     = "max-ppl-increase"
)

// AllClose is numpy.allclose's test with the reference as the second
// argument: |cand − ref| ≤ ATol + RTol·|ref| for every element.
type AllClose struct {
	ATol float64 `json:"atol"`
	RTol float64 `json:"rtol"`
}

// Thresholds select the gates; a nil field is a gate that is off.
type Thresholds struct {
	AllClose *AllClose `json:"allclose,omitempty"`
	// MinCos is the lowest cosine similarity allowed per output.
	MinCos *float64 `json:"min_cos,omitempty"`
	// MinTop1 is the lowest top-1 agreement allowed per output, as a
	// fraction in [0, 1].
	MinTop1 *float64 `json:"min_top1,omitempty"`
	// MaxAccDrop is the largest accuracy drop allowed, in percentage
	// points (reference accuracy minus candidate accuracy, times 100).
	// It needs labels.
	MaxAccDrop *float64 `json:"max_acc_drop,omitempty"`
	// MaxPPLIncrease is the largest next-token perplexity increase
	// allowed, in percent of the reference's perplexity. It needs token
	// inputs and logits (Options.Perplexity).
	MaxPPLIncrease *float64 `json:"max_ppl_increase,omitempty"`
}

// DefaultThresholds is allclose with DefaultATol and DefaultRTol.
func DefaultThresholds() Thresholds {
	return Thresholds{AllClose: &AllClose{ATol: DefaultATol, RTol: DefaultRTol}}
}

// Validate checks that thresholds are in range.
func (t Thresholds) Validate() error {
	if a := t.AllClose; a != nil && (!(a.ATol >= 0) || !(a.RTol >= 0) || math.IsInf(a.ATol, 0) || math.IsInf(a.RTol, 0)) {
		return fmt.Errorf("check: atol and rtol must be finite and >= 0, have %v and %v", a.ATol, a.RTol)
	}
	if v := t.MinCos; v != nil && !(*v >= -1 && *v <= 1) {
		return fmt.Errorf("check: min-cos must be in [-1, 1], have %v", *v)
	}
	if v := t.MinTop1; v != nil && !(*v >= 0 && *v <= 1) {
		return fmt.Errorf("check: min-top1 must be in [0, 1], have %v", *v)
	}
	if v := t.MaxAccDrop; v != nil && !(*v >= -100 && *v <= 100) {
		return fmt.Errorf("check: max-acc-drop must be in [-100, 100] points, have %v", *v)
	}
	if v := t.MaxPPLIncrease; v != nil && !(*v >= -100 && !math.IsInf(*v, 0)) {
		return fmt.Errorf("check: max-ppl-increase must be a finite percentage >= -100, have %v", *v)
	}
	return nil
}

// GateResult is one threshold applied to one output (or, for
// max-acc-drop, to the accuracy).
type GateResult struct {
	Gate   string `json:"gate"`
	Output string `json:"output,omitempty"`
	// Value is the measured quantity: violating elements for allclose,
	// cosine, top-1 agreement, or accuracy drop in points.
	Value Number `json:"value"`
	// Threshold is the limit Value was held to (0 violations for
	// allclose).
	Threshold Number `json:"threshold"`
	Pass      bool   `json:"pass"`
	Detail    string `json:"detail"`
}

// evaluate applies t to per-output metrics and the accuracy.
func evaluate(t Thresholds, outs []OutputResult, acc *Accuracy, ppl *Perplexity) []GateResult {
	var gates []GateResult
	for _, o := range outs {
		m := o.Metrics
		if ac := t.AllClose; ac != nil {
			gates = append(gates, GateResult{
				Gate: GateAllClose, Output: o.Name,
				Value: Number(m.AllCloseViolations), Threshold: 0,
				Pass: m.AllCloseViolations == 0,
				Detail: fmt.Sprintf("%d of %d elements outside atol %s + rtol %s·|ref|%s",
					m.AllCloseViolations, m.Elements, fmtF(ac.ATol), fmtF(ac.RTol), nonFinite(m)),
			})
		}
		if v := t.MinCos; v != nil {
			pass := float64(m.Cosine) >= *v
			gates = append(gates, GateResult{
				Gate: GateMinCos, Output: o.Name, Value: m.Cosine, Threshold: Number(*v), Pass: pass,
				Detail: fmt.Sprintf("cosine %s %s %s%s", fmtF(float64(m.Cosine)), cmp(pass, ">=", "<"), fmtF(*v), nonFinite(m)),
			})
		}
	}
	if v := t.MinTop1; v != nil {
		n := len(gates)
		for _, o := range outs {
			m := o.Metrics
			if m.Top1 == nil {
				continue
			}
			pass := float64(*m.Top1) >= *v && m.CandNaN == 0
			detail := fmt.Sprintf("top-1 agreement %s %s %s over %d rows", fmtF(float64(*m.Top1)), cmp(float64(*m.Top1) >= *v, ">=", "<"), fmtF(*v), m.Rows)
			if m.CandNaN > 0 {
				detail += fmt.Sprintf("; candidate has %d NaN", m.CandNaN)
			}
			gates = append(gates, GateResult{Gate: GateMinTop1, Output: o.Name, Value: *m.Top1, Threshold: Number(*v), Pass: pass, Detail: detail})
		}
		if len(gates) == n {
			gates = append(gates, GateResult{
				Gate: GateMinTop1, Value: Number(math.NaN()), Threshold: Number(*v),
				Detail: "no output has a class axis (last dim of 2 or more)",
			})
		}
	}
	if v := t.MaxAccDrop; v != nil && acc != nil {
		pass := float64(acc.DropPoints) <= *v
		gates = append(gates, GateResult{
			Gate: GateMaxAccDrop, Output: acc.Output, Value: acc.DropPoints, Threshold: Number(*v), Pass: pass,
			Detail: fmt.Sprintf("accuracy %s%% → %s%%, drop %s %s %s points",
				fmtF(100*float64(acc.Ref)), fmtF(100*float64(acc.Cand)), fmtF(float64(acc.DropPoints)), cmp(pass, "<=", ">"), fmtF(*v)),
		})
	}
	if v := t.MaxPPLIncrease; v != nil && ppl != nil {
		inc := float64(ppl.IncreasePct)
		pass := inc <= *v
		gates = append(gates, GateResult{
			Gate: GateMaxPPL, Output: ppl.Output, Value: ppl.IncreasePct, Threshold: Number(*v), Pass: pass,
			Detail: fmt.Sprintf("perplexity %s → %s over %d tokens, increase %s%% %s %s%%",
				fmtF(float64(ppl.Ref)), fmtF(float64(ppl.Cand)), ppl.Tokens, fmtF(inc), cmp(pass, "<=", ">"), fmtF(*v)),
		})
	}
	return gates
}

func cmp(pass bool, ok, bad string) string {
	if pass {
		return ok
	}
	return bad
}

func nonFinite(m Metrics) string {
	if m.RefNaN+m.CandNaN+m.InfMismatch == 0 {
		return ""
	}
	return fmt.Sprintf(" (NaN: %d reference, %d candidate; infinity mismatches: %d)", m.RefNaN, m.CandNaN, m.InfMismatch)
}

// fmtF formats a float compactly for messages.
func fmtF(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
