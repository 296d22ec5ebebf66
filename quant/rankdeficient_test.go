package quant

import (
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// GPTQ layers record how many calibration rows their Hessian saw, and a
// run whose layers saw fewer rows than inputs says so; enough rows for
// every layer drop the warning. On the trained character decoder
// (synthetic data: SyntheticLen tokens per sample).
func TestRankDeficientHessiansNoted(t *testing.T) {
	run := func(samples int) *Report {
		m, err := graph.Load("../fixtures/models/llama_char_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Quantize(t.Context(), m, Options{Format: FormatNBits, Bits: 4, Block: 32, Method: MethodGPTQ, CalibSamples: samples})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	noted := func(rep *Report) bool {
		for _, n := range rep.Notes {
			if strings.Contains(n, "rank-deficient") {
				return true
			}
		}
		return false
	}
	few := run(2)
	widest := 0
	for _, lr := range few.Layers {
		if lr.HessianRows != 2*SyntheticLen || lr.HessianCols < 2*SyntheticLen {
			t.Fatalf("layer %s: Hessian of %d rows, %d wide; want %d rows, wider than that", lr.Node, lr.HessianRows, lr.HessianCols, 2*SyntheticLen)
		}
		widest = max(widest, lr.HessianCols)
	}
	if !noted(few) {
		t.Fatalf("2 samples of %d tokens for inputs up to %d wide: no rank-deficiency note in %q", SyntheticLen, widest, few.Notes)
	}
	enough := run((widest + SyntheticLen - 1) / SyntheticLen)
	if noted(enough) {
		t.Fatalf("%d rows per layer for inputs up to %d wide: %q", enough.Layers[0].HessianRows, widest, enough.Notes)
	}
}
