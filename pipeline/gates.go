package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/report"
)

// Recipe gates. The first four are check's thresholds, applied by the
// last check step; the others are measured by pare run itself.
const (
	gateMinTop1         = check.GateMinTop1
	gateMaxAccDrop      = check.GateMaxAccDrop
	gateMinCos          = check.GateMinCos
	gateMaxPPL          = check.GateMaxPPL
	gateMaxLatencyRatio = "max-latency-ratio"
	gateMaxSize         = "max-size"
)

var gateNames = []string{gateMinTop1, gateMaxAccDrop, gateMinCos, gateMaxPPL, gateMaxLatencyRatio, gateMaxSize}

// recipeGate is one gate: its limit, and for max-size whether the limit
// is a percentage of the input's size rather than bytes.
type recipeGate struct {
	Name    string
	Where   string
	Text    string
	Value   float64
	Percent bool
}

func (r *Recipe) parseGates(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return recipeErr(r.at(v), "gates: want a mapping (gate: limit), not a %s", kindName(v))
	}
	return eachPair(r, v, func(k, val *yaml.Node) error {
		if val.Kind != yaml.ScalarNode {
			return recipeErr(r.at(val), "gates: %s wants a single value, not a %s", k.Value, kindName(val))
		}
		g, err := parseGate(k.Value, val.Value, r.at(k))
		if err != nil {
			return err
		}
		r.Gates = append(r.Gates, g)
		return nil
	})
}

func parseGate(name, text, where string) (recipeGate, error) {
	g := recipeGate{Name: name, Where: where, Text: text}
	var th check.Thresholds
	switch name {
	case gateMaxSize:
		return parseSizeGate(g)
	case gateMinTop1:
		th.MinTop1 = &g.Value
	case gateMaxAccDrop:
		th.MaxAccDrop = &g.Value
	case gateMinCos:
		th.MinCos = &g.Value
	case gateMaxPPL:
		th.MaxPPLIncrease = &g.Value
	case gateMaxLatencyRatio:
	default:
		return g, recipeErr(where, "gates: unknown gate %q (want %s)", name, strings.Join(gateNames, ", "))
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) {
		return g, recipeErr(where, "gates: %s wants a number, got %q", name, text)
	}
	g.Value = v
	if name == gateMaxLatencyRatio && !(v > 0 && !math.IsInf(v, 0)) {
		return g, recipeErr(where, "gates: max-latency-ratio must be a positive ratio (0.8 = 20%% faster), got %v", v)
	}
	if err := th.Validate(); err != nil {
		return g, recipeErr(where, "gates: %s", strings.TrimPrefix(err.Error(), "check: "))
	}
	return g, nil
}

// sizeUnits are max-size's units; a bare number is bytes.
var sizeUnits = []struct {
	suffix string
	mult   float64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// parseSizeGate reads max-size: bytes with an optional unit (KB, MiB,
// ...), or a percentage of the input model's size ("40%").
func parseSizeGate(g recipeGate) (recipeGate, error) {
	s, mult := strings.TrimSpace(g.Text), 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, g.Percent = strings.TrimSpace(p), true
	} else {
		for _, u := range sizeUnits {
			if p, ok := strings.CutSuffix(s, u.suffix); ok {
				s, mult = strings.TrimSpace(p), u.mult
				break
			}
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) || (g.Percent && v > 1000) {
		return g, recipeErr(g.Where, "gates: max-size wants a positive size (bytes, or with KB, MB, GB, KiB, MiB, GiB) or a percentage of the input (40%%), got %q", g.Text)
	}
	g.Value = v * mult
	return g, nil
}

// gate returns the recipe's gate of that name, or nil.
func (r *Recipe) gate(name string) *recipeGate {
	for i := range r.Gates {
		if r.Gates[i].Name == name {
			return &r.Gates[i]
		}
	}
	return nil
}

// evalRunGates applies the gates pare run measures itself (size and
// latency) to a finished run.
func evalRunGates(r *Recipe, run *report.Run) []report.Gate {
	var out []report.Gate
	if g := r.gate(gateMaxSize); g != nil {
		rg := report.Gate{Gate: g.Name, Threshold: g.Value}
		b, a := run.Before.SizeBytes, run.After.SizeBytes
		switch {
		case a == nil:
			rg.Detail = "size after not measured"
		case g.Percent && b != nil && *b > 0:
			pct := 100 * float64(*a) / float64(*b)
			rg.Value, rg.Pass = &pct, pct <= g.Value
			rg.Detail = fmt.Sprintf("size %d bytes is %.1f%% of the input's %d, limit %s", *a, pct, *b, g.Text)
		case g.Percent:
			rg.Detail = "input size not measured"
		default:
			v := float64(*a)
			rg.Value, rg.Pass = &v, v <= g.Value
			rg.Detail = fmt.Sprintf("size %d bytes, limit %s (%.0f bytes)", *a, g.Text, g.Value)
		}
		out = append(out, rg)
	}
	if g := r.gate(gateMaxLatencyRatio); g != nil {
		rg := report.Gate{Gate: g.Name, Threshold: g.Value}
		if ratio, ok := latencyRatio(run); ok {
			rg.Value, rg.Pass = &ratio, ratio <= g.Value
			rg.Detail = fmt.Sprintf("median latency %.3f× the input's, limit %v×", ratio, g.Value)
		} else {
			rg.Detail = "latency not measured (no bench step finished)"
		}
		out = append(out, rg)
	}
	return out
}

func latencyRatio(run *report.Run) (float64, bool) {
	b, a := run.Before.LatencyNs, run.After.LatencyNs
	if b == nil || a == nil || *b == 0 {
		return 0, false
	}
	return float64(*a) / float64(*b), true
}

// CheckGates converts check's gate results to report gates.
func CheckGates(gs []check.GateResult) []report.Gate {
	out := make([]report.Gate, len(gs))
	for i, g := range gs {
		out[i] = report.Gate{Gate: g.Gate, Output: g.Output, Value: report.Finite(float64(g.Value)), Threshold: float64(g.Threshold), Pass: g.Pass, Detail: g.Detail}
	}
	return out
}
