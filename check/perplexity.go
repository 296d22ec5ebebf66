package check

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/pare-dev/pare/tensor"
)

// Perplexity is each model's next-token perplexity on the token inputs:
// the logits at position t score token t+1 of the same row, so a row of S
// tokens predicts S−1 of them.
type Perplexity struct {
	// Input holds the token ids, Output the logits [batch, seq, vocab].
	Input  string `json:"input"`
	Output string `json:"output"`
	// Tokens is the number of predicted positions.
	Tokens int64  `json:"tokens"`
	Ref    Number `json:"reference"`
	Cand   Number `json:"candidate"`
	// RefTop1 and CandTop1 are the fractions of positions whose argmax
	// is the next token.
	RefTop1  Number `json:"reference_top1"`
	CandTop1 Number `json:"candidate_top1"`
	// IncreasePct is (Cand/Ref − 1)·100.
	IncreasePct Number `json:"increase_pct"`
}

// pplCounter sums next-token negative log-likelihoods over batches.
type pplCounter struct {
	input         string
	output        int
	n             int64
	refNLL, cNLL  float64
	refOK, candOK int64
}

// pickTokens chooses the token input and logits output of a causal LM:
// an integer input of rank 2 (input_ids when there are several) and the
// first compared output of rank 3 whose first two axes are the input's
// and whose last axis has two or more entries.
func pickTokens(feed map[string]tensor.Dense, names []string, outs []tensor.Dense) (string, int, error) {
	var cands []string
	for name, d := range feed {
		if !d.DType.IsFloat() && d.DType != tensor.Bool && d.Rank() == 2 {
			cands = append(cands, name)
		}
	}
	sort.Strings(cands)
	if i := slices.Index(cands, "input_ids"); i > 0 {
		cands[0] = cands[i]
	}
	if len(cands) == 0 {
		return "", -1, fmt.Errorf("check: %w: perplexity needs an integer token input of shape [batch, seq]", ErrData)
	}
	ids := feed[cands[0]]
	for j, d := range outs {
		if d.Rank() == 3 && d.DType.IsFloat() && d.Shape[0] == ids.Shape[0] && d.Shape[1] == ids.Shape[1] && d.Shape[2] >= 2 {
			return cands[0], j, nil
		}
	}
	return "", -1, fmt.Errorf("check: %w: perplexity needs logits of shape [batch, seq, vocab] for input %q %s; outputs: %v", ErrData, cands[0], tensor.FormatShape(ids.Shape), names)
}

// add scores one batch of both models' logits against the next tokens.
func (p *pplCounter) add(ids, ref, cand tensor.Dense) error {
	tok, err := ids.Int64s()
	if err != nil {
		return err
	}
	r, err := ref.Float64s()
	if err != nil {
		return err
	}
	c, err := cand.Float64s()
	if err != nil {
		return err
	}
	b, s, v := ref.Shape[0], ref.Shape[1], ref.Shape[2]
	for i := range b {
		for t := range s - 1 {
			next := tok[i*s+t+1]
			if next < 0 || next >= v {
				return fmt.Errorf("%w: token %d at row %d position %d is outside the vocabulary of %d", ErrData, next, p.n/max(s-1, 1)+i, t+1, v)
			}
			at := (i*s + t) * v
			nll, ok := nextNLL(r[at:at+v], next)
			p.refNLL += nll
			if ok {
				p.refOK++
			}
			nll, ok = nextNLL(c[at:at+v], next)
			p.cNLL += nll
			if ok {
				p.candOK++
			}
			p.n++
		}
	}
	return nil
}

// nextNLL returns −log softmax(logits)[next] and whether next is the
// argmax.
func nextNLL(logits []float64, next int64) (float64, bool) {
	hi, arg := math.Inf(-1), 0
	for k, x := range logits {
		if x > hi {
			hi, arg = x, k
		}
	}
	sum := 0.0
	for _, x := range logits {
		sum += math.Exp(x - hi)
	}
	return hi + math.Log(sum) - logits[next], int64(arg) == next
}

func (p *pplCounter) result(output string) (*Perplexity, error) {
	if p.n == 0 {
		return nil, fmt.Errorf("check: %w: perplexity needs sequences of two or more tokens", ErrData)
	}
	n := float64(p.n)
	ref, cand := math.Exp(p.refNLL/n), math.Exp(p.cNLL/n)
	return &Perplexity{
		Input: p.input, Output: output, Tokens: p.n,
		Ref: Number(ref), Cand: Number(cand),
		RefTop1: Number(float64(p.refOK) / n), CandTop1: Number(float64(p.candOK) / n),
		IncreasePct: Number((cand/ref - 1) * 100),
	}, nil
}
