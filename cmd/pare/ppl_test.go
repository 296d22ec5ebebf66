package main

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/report"
	"github.com/pare-dev/pare/tensor"
)

// refPerplexity runs model on ids in onnxruntime one row at a time and
// returns exp(mean −log softmax(logits[t])[ids[t+1]]) and the fraction of
// positions whose largest logit is the next token.
func refPerplexity(t *testing.T, model string, ids tensor.Dense) (float64, float64) {
	t.Helper()
	s, err := ort.NewSessionFromFile(model, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := ids.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	rows, seq := ids.Shape[0], ids.Shape[1]
	var nll float64
	var n, hit int
	for r := range rows {
		row, err := ids.Slice(r, r+1)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Run(context.Background(), map[string]tensor.Dense{s.Inputs()[0].Name: row}, nil)
		if err != nil {
			t.Fatal(err)
		}
		logits, err := out[0].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		vocab := int(out[0].Shape[2])
		for p := 0; p+1 < int(seq); p++ {
			l := logits[p*vocab : (p+1)*vocab]
			next := tok[int(r)*int(seq)+p+1]
			z, best := 0.0, 0
			for k, x := range l {
				z += math.Exp(x)
				if x > l[best] {
					best = k
				}
			}
			nll += math.Log(z) - l[next]
			n++
			if int64(best) == next {
				hit++
			}
		}
	}
	return math.Exp(nll / float64(n)), float64(hit) / float64(n)
}

// TestCheckPerplexity: pare check --metric ppl on a trained character
// GPT (symbolic batch) and the Llama export (fixed batch 1) against its
// pruned copy matches the perplexity and next-token top-1 computed here
// from onnxruntime's logits, and max-ppl-increase gates on it.
func TestCheckPerplexity(t *testing.T) {
	all, err := tensor.ReadNpyFile("../../fixtures/data/gpt_test_ids.npy")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := all.Slice(0, 24)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idsPath := filepath.Join(dir, "ids.npy")
	if err := tensor.WriteNpyFile(idsPath, ids); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"../../fixtures/models/char_gpt_op13.onnx", "../../fixtures/models/hf_llama_tiny.onnx"} {
		pruned := filepath.Join(dir, filepath.Base(model))
		if _, err := runPareErr("prune", model, "-o", pruned, "--mlp", "0.5"); err != nil {
			t.Fatal(err)
		}
		out, err := runPareErr("check", model, pruned, "--inputs", idsPath, "--metric", "ppl", "--json")
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		var rep checkReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		p := rep.Perplexity
		if p == nil {
			t.Fatalf("%s: no perplexity in %s", model, out)
		}
		wantRef, top1Ref := refPerplexity(t, model, ids)
		wantCand, top1Cand := refPerplexity(t, pruned, ids)
		t.Logf("%s: perplexity %.4f → %.4f, top-1 %.3f → %.3f", model, wantRef, wantCand, top1Ref, top1Cand)
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*b }
		if !near(float64(p.Ref), wantRef) || !near(float64(p.Cand), wantCand) || !near(float64(p.RefTop1), top1Ref) || !near(float64(p.CandTop1), top1Cand) {
			t.Errorf("%s: pare %+v, computed here %.6f/%.6f top-1 %.4f/%.4f", model, *p, wantRef, wantCand, top1Ref, top1Cand)
		}
		if p.Tokens != ids.Shape[0]*(ids.Shape[1]-1) || !(wantCand > wantRef) {
			t.Errorf("%s: %d tokens; pruning did not raise perplexity (%.4f → %.4f)", model, p.Tokens, wantRef, wantCand)
		}
		inc := 100 * (wantCand/wantRef - 1)
		for limit, code := range map[float64]int{inc / 2: exitCheckFailed, inc*2 + 1: exitOK} {
			_, err := runPareErr("check", model, pruned, "--inputs", idsPath, "--max-ppl-increase", fmtLimit(limit))
			if exitCode(err) != code {
				t.Errorf("%s: --max-ppl-increase %.3f with an increase of %.3f%%: exit %d (%v), want %d", model, limit, inc, exitCode(err), err, code)
			}
		}
	}
	// A model without token inputs cannot be scored.
	m := "../../fixtures/models/resnet18_w16_op13.onnx"
	if _, err := runPareErr("check", m, m, "--metric", "ppl"); exitCode(err) != exitUsage {
		t.Errorf("perplexity of an image model: %v, want exit %d", err, exitUsage)
	}
}

func fmtLimit(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestRunPerplexityGate: the recipe gate max-ppl-increase fails a run
// whose pruned LM lost too much, and passes it with a looser limit.
func TestRunPerplexityGate(t *testing.T) {
	model, err := filepath.Abs("../../fixtures/models/char_gpt_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := filepath.Abs("../../fixtures/data/gpt_test_ids.npy")
	if err != nil {
		t.Fatal(err)
	}
	for limit, code := range map[string]int{"2": exitCheckFailed, "50": exitOK} {
		recipe := writeRecipe(t, "models: ["+model+"]\nsteps:\n  - prune: {ratio: 0.4, criterion: magnitude}\n  - check: {inputs: "+ids+"}\ngates:\n  max-ppl-increase: "+limit+"\n")
		out := t.TempDir()
		text, got := runCLI(t, "run", recipe, "--out", out, "--json")
		if got != code {
			t.Fatalf("limit %s: exit %d, want %d\n%s", limit, got, code, text)
		}
		run, err := report.ReadRun(filepath.Join(out, "char_gpt_op13", "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range run.Gates {
			if g.Gate == "max-ppl-increase" {
				found = true
				if g.Pass != (code == exitOK) || g.Value == nil || *g.Value <= 2 {
					t.Errorf("limit %s: gate %+v", limit, g)
				}
			}
		}
		if !found {
			t.Errorf("limit %s: no max-ppl-increase gate in the report", limit)
		}
	}
}
