package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// Options configure Compare.
type Options struct {
	// Batch is the number of rows per run; 0 means DefaultBatch of the
	// reference's inputs.
	Batch int64
	// Outputs lists the outputs to compare; nil means all of the
	// reference's outputs.
	Outputs []string
	// Labels, when not nil, hold one class index per row of LabelOutput.
	Labels []int64
	// LabelOutput is the output whose argmax over the last axis is the
	// predicted class; empty means the first compared output whose last
	// axis has two or more entries.
	LabelOutput string
	Thresholds  Thresholds
	// Perplexity scores both models as causal LMs: next-token
	// perplexity and top-1 of the logits output on the token input.
	Perplexity bool
	// Decode runs both models as decoding steps over the token sequences
	// of src, one position at a time with their own key/value caches
	// (Decoder), and compares the logits of every position.
	Decode bool
	// Progress, when set, is called after each batch with the rows done.
	Progress func(done, total int64)
}

// Compare runs both sessions on every batch of src and compares their
// outputs. It returns the Result and, when a gate fails, an error
// wrapping ErrFailed (the Result is returned too). Other errors (models
// that cannot be compared, bad data, onnxruntime failures) return no
// Result.
func Compare(ctx context.Context, ref, cand *ort.Session, src Source, o Options) (*Result, error) {
	if err := o.Thresholds.Validate(); err != nil {
		return nil, err
	}
	if o.Thresholds.MaxAccDrop != nil && o.Labels == nil {
		return nil, fmt.Errorf("check: %w: max-acc-drop needs labels", ErrData)
	}
	if o.Thresholds.MaxPPLIncrease != nil {
		o.Perplexity = true
	}
	run := runBoth
	var names []string
	var err error
	if o.Decode {
		var rd, cd *Decoder
		if rd, err = NewDecoder(ref); err == nil {
			cd, err = NewDecoder(cand)
		}
		if err != nil {
			return nil, err
		}
		names = []string{rd.Logits}
		run = func(ctx context.Context, ref, cand *ort.Session, feed map[string]tensor.Dense, _ []string) ([]tensor.Dense, []tensor.Dense, error) {
			return decodeBoth(ctx, ref, cand, rd, cd, feed)
		}
	} else if names, err = comparable(ref, cand, o.Outputs); err != nil {
		return nil, err
	}
	batch := o.Batch
	if batch == 0 {
		batch = DefaultBatch(ref.Inputs())
	}
	rows := src.Rows()
	if batch < 0 || rows <= 0 {
		return nil, fmt.Errorf("check: %w: %d rows in batches of %d", ErrData, rows, batch)
	}
	accs := make([]*accumulator, len(names))
	for i := range accs {
		accs[i] = newAccumulator(o.Thresholds.AllClose)
	}
	dtypes := make([]string, len(names))
	labelIdx := -1
	var lab labelCounter
	var ppl *pplCounter
	for at := int64(0); at < rows; at += batch {
		end := min(rows, at+batch)
		feed, err := src.Batch(at, end)
		if err != nil {
			return nil, err
		}
		r, c, err := run(ctx, ref, cand, feed, names)
		if err != nil {
			return nil, fmt.Errorf("check: rows %d-%d: %w", at, end-1, err)
		}
		// A candidate whose cache lost heads is compared on the
		// reference's kept positions (ioslice).
		for j, name := range names {
			if r[j], err = cand.Kept().Slice(name, r[j]); err != nil {
				return nil, fmt.Errorf("check: %w: %v", ErrIncompatible, err)
			}
		}
		if at == 0 && o.Labels != nil {
			if labelIdx, err = pickLabelOutput(names, r, o.LabelOutput); err != nil {
				return nil, err
			}
		}
		if at == 0 && o.Perplexity {
			in, j, err := pickTokens(feed, names, r)
			if err != nil {
				return nil, err
			}
			ppl = &pplCounter{input: in, output: j}
		}
		if ppl != nil {
			if err := ppl.add(feed[ppl.input], r[ppl.output], c[ppl.output]); err != nil {
				return nil, fmt.Errorf("check: rows %d-%d: %w", at, end-1, err)
			}
		}
		for j := range names {
			dtypes[j] = r[j].DType.String()
			if r[j].DType != c[j].DType {
				dtypes[j] += "/" + c[j].DType.String()
			}
			refArg, candArg, err := accs[j].add(r[j], c[j])
			if err != nil {
				return nil, fmt.Errorf("check: output %q: %w", names[j], err)
			}
			if j == labelIdx {
				if err := lab.add(o.Labels, refArg, candArg); err != nil {
					return nil, fmt.Errorf("check: output %q: %w", names[j], err)
				}
			}
		}
		if o.Progress != nil {
			o.Progress(end, rows)
		}
	}
	res := &Result{
		Reference: ref.Name(), Candidate: cand.Name(), Inputs: src.Describe(),
		Samples: rows, Batch: min(batch, rows), Thresholds: o.Thresholds,
	}
	for j, name := range names {
		shape := []int64{}
		if accs[j].rank > 0 {
			shape = append([]int64{accs[j].dim0}, accs[j].shapeTail...)
		}
		res.Outputs = append(res.Outputs, OutputResult{Name: name, DType: dtypes[j], Shape: shape, Metrics: accs[j].metrics()})
	}
	if labelIdx >= 0 {
		if res.Accuracy, err = lab.accuracy(names[labelIdx], o.Labels); err != nil {
			return nil, err
		}
	}
	if ppl != nil {
		if res.Perplexity, err = ppl.result(names[ppl.output]); err != nil {
			return nil, err
		}
	}
	res.Gates = evaluate(o.Thresholds, res.Outputs, res.Accuracy, res.Perplexity)
	err = res.err()
	res.Pass = err == nil
	return res, err
}

// comparable checks that both models take the same inputs and have the
// outputs to compare, and returns their names.
func comparable(ref, cand *ort.Session, outputs []string) ([]string, error) {
	ri, ci := ref.Inputs(), cand.Inputs()
	for _, r := range ri {
		j := slices.IndexFunc(ci, func(c ort.ValueInfo) bool { return c.Name == r.Name })
		if j < 0 {
			return nil, fmt.Errorf("check: %w: candidate has no input %q", ErrIncompatible, r.Name)
		}
		if ci[j].DType != r.DType {
			return nil, fmt.Errorf("check: %w: input %q is %v in the reference, %v in the candidate", ErrIncompatible, r.Name, r.DType, ci[j].DType)
		}
	}
	if len(ci) != len(ri) {
		return nil, fmt.Errorf("check: %w: reference has inputs %s, candidate %s", ErrIncompatible,
			strings.Join(infoNames(ri), ", "), strings.Join(infoNames(ci), ", "))
	}
	if len(outputs) == 0 {
		outputs = infoNames(ref.Outputs())
	}
	co := cand.Outputs()
	for _, name := range outputs {
		if !slices.ContainsFunc(co, func(c ort.ValueInfo) bool { return c.Name == name }) {
			return nil, fmt.Errorf("check: %w: candidate has no output %q (outputs: %s)", ErrIncompatible, name, strings.Join(infoNames(co), ", "))
		}
	}
	return outputs, nil
}

// referenceError is a failed run of the reference model: the inputs
// are at fault, not the candidate.
type referenceError struct{ err error }

func (e *referenceError) Error() string { return e.err.Error() }
func (e *referenceError) Unwrap() error { return e.err }

// ReferenceFailed reports whether err is a run of the reference model
// that failed on the inputs given.
func ReferenceFailed(err error) bool {
	var r *referenceError
	return errors.As(err, &r)
}

// decodeBoth decodes the token ids of feed with both models, each with
// its own cache, concurrently.
func decodeBoth(ctx context.Context, ref, cand *ort.Session, rd, cd *Decoder, feed map[string]tensor.Dense) (r, c []tensor.Dense, err error) {
	ids, ok := feed[rd.IDs]
	if !ok {
		return nil, nil, fmt.Errorf("%w: the data has no token ids for %s", ErrData, rd.IDs)
	}
	decode := func(d *Decoder, s *ort.Session) func() ([]tensor.Dense, error) {
		return func() ([]tensor.Dense, error) {
			l, err := d.Run(ctx, s, ids)
			return []tensor.Dense{l}, err
		}
	}
	return runPair(decode(rd, ref), decode(cd, cand))
}

// runBoth runs the two sessions concurrently on the same feed.
func runBoth(ctx context.Context, ref, cand *ort.Session, feed map[string]tensor.Dense, names []string) (r, c []tensor.Dense, err error) {
	run := func(s *ort.Session) func() ([]tensor.Dense, error) {
		return func() ([]tensor.Dense, error) { return s.Run(ctx, feed, names) }
	}
	return runPair(run(ref), run(cand))
}

// runPair runs the reference and the candidate concurrently; a failed
// reference is a referenceError (the inputs are at fault).
func runPair(ref, cand func() ([]tensor.Dense, error)) (r, c []tensor.Dense, err error) {
	done := make(chan error, 1)
	go func() {
		var err error
		c, err = cand()
		done <- err
	}()
	r, err = ref()
	cerr := <-done
	if err != nil {
		return nil, nil, fmt.Errorf("reference: %w", &referenceError{err})
	}
	if cerr != nil {
		return nil, nil, fmt.Errorf("candidate: %w", cerr)
	}
	return r, c, nil
}

func pickLabelOutput(names []string, outs []tensor.Dense, want string) (int, error) {
	if want != "" {
		i := slices.Index(names, want)
		if i < 0 {
			return -1, fmt.Errorf("check: %w: label output %q is not among the compared outputs %s", ErrData, want, strings.Join(names, ", "))
		}
		return i, nil
	}
	for i, d := range outs {
		if d.Rank() > 0 && d.Shape[d.Rank()-1] >= 2 {
			return i, nil
		}
	}
	return -1, fmt.Errorf("check: %w: labels given but no output has a class axis (last dim of 2 or more)", ErrData)
}

// labelCounter counts correct predictions of both models, walking the
// labels in step with the rows of the label output.
type labelCounter struct {
	at, refOK, candOK int64
}

func (l *labelCounter) add(labels, refArg, candArg []int64) error {
	if refArg == nil {
		return fmt.Errorf("%w: the label output has no class axis", ErrData)
	}
	if l.at+int64(len(refArg)) > int64(len(labels)) {
		return fmt.Errorf("%w: more prediction rows than the %d labels", ErrData, len(labels))
	}
	for i := range refArg {
		y := labels[l.at+int64(i)]
		if refArg[i] == y {
			l.refOK++
		}
		if candArg[i] == y {
			l.candOK++
		}
	}
	l.at += int64(len(refArg))
	return nil
}

func (l *labelCounter) accuracy(output string, labels []int64) (*Accuracy, error) {
	if l.at != int64(len(labels)) {
		return nil, fmt.Errorf("check: %w: %d labels for %d prediction rows of %q", ErrData, len(labels), l.at, output)
	}
	n := float64(len(labels))
	ref, cand := float64(l.refOK)/n, float64(l.candOK)/n
	return &Accuracy{
		Output: output, Labels: int64(len(labels)),
		Ref: Number(ref), Cand: Number(cand), DropPoints: Number((ref - cand) * 100),
	}, nil
}

// LoadLabels reads class indices from an integer .npy of shape [N] or
// [N, 1].
func LoadLabels(path string) ([]int64, error) {
	d, err := tensor.ReadNpyFile(path)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if !(d.Rank() == 1 || d.Rank() == 2 && d.Shape[1] == 1) {
		return nil, fmt.Errorf("check: %w: labels %s have shape %s, want [N] or [N 1]", ErrData, path, tensor.FormatShape(d.Shape))
	}
	labels, err := d.Int64s()
	if err != nil {
		return nil, fmt.Errorf("check: %w: labels %s: %v", ErrData, path, err)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("check: %w: labels %s are empty", ErrData, path)
	}
	return labels, nil
}
