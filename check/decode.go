package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// A decoding step takes its key/value cache as inputs (past) and returns
// it grown by the new tokens (present); it cannot be scored on a token
// sequence in one run. Decoder runs one such model over token sequences
// one position at a time, as generation does with teacher forcing: each
// step feeds the next token, the mask and position of a sequence that
// long, and the model's own presents of the step before as its pasts
// (empty at first). The logits of every step, stacked, are what a
// whole-sequence model would give, so outputs, perplexity and top-1
// compare as for any causal LM. Each model keeps its own cache: a
// candidate whose cache lost heads (ioslice) decodes with its own sizes.
type Decoder struct {
	IDs    string // the token ids input, [batch, 1] per step
	Mask   string // attention_mask [batch, positions so far], "" when absent
	Pos    string // position_ids [batch, 1], "" when absent
	Logits string // the first output that is not a present state
	pairs  []cachePair
	ids    ort.ValueInfo
	// the element types of the mask and positions (int64 or int32)
	maskType, posType tensor.DType
	vocab             int64 // the logits' last size when static, else 0
}

type cachePair struct {
	past    ort.ValueInfo
	present string
	axis    int // the past's length axis, 0 at the first step
}

// NewDecoder recognises a decoding step among s's inputs and outputs:
// every input is a past state paired with a present output (past_k0 and
// present_k0, past_key_values.0.key and present.0.key), token ids,
// attention_mask or position_ids. It says what does not fit otherwise.
func NewDecoder(s *ort.Session) (*Decoder, error) {
	d := &Decoder{}
	presents := map[string]string{}
	for _, o := range s.Outputs() {
		if key, ok := stateKey(o.Name, "present"); ok {
			presents[key] = o.Name
		} else if d.Logits == "" {
			d.Logits = o.Name
			if n := len(o.Dims); n > 0 && o.Dims[n-1] > 0 {
				d.vocab = o.Dims[n-1]
			}
		}
	}
	var other []string
	for _, in := range s.Inputs() {
		key, isPast := stateKey(in.Name, "past_key_values", "past")
		switch present, ok := presents[key]; {
		case isPast && ok:
			axis := -1
			for i, dim := range in.Dims {
				if i > 0 && dim < 0 {
					if axis >= 0 {
						return nil, fmt.Errorf("check: %w: past state %s (%v) has more than one free size besides the batch", ErrIncompatible, in.Name, in)
					}
					axis = i
				}
			}
			if axis < 0 || len(in.Dims) < 3 || !in.DType.IsFloat() {
				return nil, fmt.Errorf("check: %w: past state %s (%v) has no free length axis", ErrIncompatible, in.Name, in)
			}
			d.pairs = append(d.pairs, cachePair{in, present, axis})
		case in.Name == "attention_mask" && in.DType.IsInteger() && len(in.Dims) == 2:
			d.Mask, d.maskType = in.Name, in.DType
		case in.Name == "position_ids" && in.DType.IsInteger() && len(in.Dims) == 2:
			d.Pos, d.posType = in.Name, in.DType
		case d.IDs == "" && in.DType.IsInteger() && len(in.Dims) == 2:
			d.IDs, d.ids = in.Name, in
		default:
			other = append(other, in.Name)
		}
	}
	switch {
	case len(d.pairs) == 0:
		return nil, fmt.Errorf("check: %w: no past input paired with a present output", ErrIncompatible)
	case d.IDs == "" || d.Logits == "":
		return nil, fmt.Errorf("check: %w: no token ids input or no logits output beside the cache", ErrIncompatible)
	case len(other) > 0:
		return nil, fmt.Errorf("check: %w: decoding step by step fills only token ids, attention_mask, position_ids and the cache, not %s", ErrIncompatible, strings.Join(other, ", "))
	}
	return d, nil
}

// HasCache reports whether a model with these inputs and outputs pairs
// a past input with a present output by name, as NewDecoder does: a
// check that needs no session, so that models without a cache are not
// opened in onnxruntime to find out.
func HasCache(inputs, outputs []string) bool {
	presents := map[string]bool{}
	for _, o := range outputs {
		if key, ok := stateKey(o, "present"); ok {
			presents[key] = true
		}
	}
	for _, in := range inputs {
		if key, ok := stateKey(in, "past_key_values", "past"); ok && presents[key] {
			return true
		}
	}
	return false
}

// stateKey strips the first of prefixes (and a following '.' or '_')
// from name: the part a past and its present share.
func stateKey(name string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" {
			return strings.TrimLeft(rest, "._"), true
		}
	}
	return "", false
}

// Run decodes ids [batch, T] and returns the logits of every position,
// [batch, T, ...], the step's logits stacked along axis 1.
func (d *Decoder) Run(ctx context.Context, s *ort.Session, ids tensor.Dense) (tensor.Dense, error) {
	if len(ids.Shape) != 2 {
		return tensor.Dense{}, fmt.Errorf("check: token ids %v, want [batch, positions]", ids.Shape)
	}
	batch, steps := ids.Shape[0], ids.Shape[1]
	var out []float32
	var tail []int64
	_, err := d.walk(ctx, s, ids, steps, true, func(t int64, l tensor.Dense) error {
		if len(l.Shape) < 2 || l.Shape[0] != batch || l.Shape[1] != 1 {
			return fmt.Errorf("check: step %d: logits %v, want [%d, 1, ...]", t, l.Shape, batch)
		}
		v, err := l.Float32s()
		if err != nil {
			return err
		}
		if t == 0 {
			tail = slices.Clone(l.Shape[2:])
			out = make([]float32, 0, int64(len(v))*steps)
		}
		out = append(out, v...) // [step][batch][rest]; reordered below
		return nil
	})
	if err != nil {
		return tensor.Dense{}, err
	}
	// Steps come out as [T, batch, rest]; the stack is [batch, T, rest].
	per := len(out) / int(steps*batch)
	stacked := make([]float32, len(out))
	for t := range int(steps) {
		for b := range int(batch) {
			copy(stacked[(b*int(steps)+t)*per:], out[(t*int(batch)+b)*per:(t*int(batch)+b+1)*per])
		}
	}
	return tensor.New(append([]int64{batch, steps}, tail...), stacked)
}

// StepInputs decodes ids [batch, T] up to their last position and
// returns the inputs of that last step: its token, the mask and
// position of a sequence T long, and the cache the T−1 steps before it
// left. They are what a decoding step is fed in generation, so they
// serve as its calibration inputs.
func (d *Decoder) StepInputs(ctx context.Context, s *ort.Session, ids tensor.Dense) (map[string]tensor.Dense, error) {
	if len(ids.Shape) != 2 || ids.Shape[1] < 1 {
		return nil, fmt.Errorf("check: token ids %v, want [batch, positions]", ids.Shape)
	}
	return d.walk(ctx, s, ids, ids.Shape[1]-1, false, nil)
}

// walk runs s over the first upto positions of ids [batch, T], each step
// fed the presents of the step before (empty pasts at first), and
// returns the inputs of position upto (when upto < T) or the last
// step's. With logits, seen gets each step's logits.
func (d *Decoder) walk(ctx context.Context, s *ort.Session, ids tensor.Dense, upto int64, logits bool, seen func(t int64, l tensor.Dense) error) (map[string]tensor.Dense, error) {
	batch, steps := ids.Shape[0], ids.Shape[1]
	tok, err := ids.Int64s()
	if err != nil {
		return nil, err
	}
	feed := map[string]tensor.Dense{}
	for _, p := range d.pairs {
		shape := slices.Clone(p.past.Dims)
		shape[0], shape[p.axis] = batch, 0
		if feed[p.past.Name], err = tensor.Zeros(p.past.DType, shape); err != nil {
			return nil, err
		}
	}
	var names []string
	if logits {
		names = append(names, d.Logits)
	}
	for _, p := range d.pairs {
		names = append(names, p.present)
	}
	for t := range min(upto+1, steps) {
		d.feedPosition(feed, tok, batch, steps, t)
		if t == upto {
			break
		}
		res, err := s.Run(ctx, feed, names)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		if logits {
			if err := seen(t, res[0]); err != nil {
				return nil, err
			}
			res = res[1:]
		}
		for i, p := range d.pairs {
			feed[p.past.Name] = res[i]
		}
	}
	return feed, nil
}

// feedPosition sets feed's token ids, mask and position for position t
// of tok [batch, steps], each in its input's integer type.
func (d *Decoder) feedPosition(feed map[string]tensor.Dense, tok []int64, batch, steps, t int64) {
	col := make([]int64, batch)
	for b := range batch {
		col[b] = tok[b*steps+t]
	}
	feed[d.IDs] = integers(d.ids.DType, []int64{batch, 1}, col)
	if d.Mask != "" {
		ones := make([]int64, batch*(t+1))
		for i := range ones {
			ones[i] = 1
		}
		feed[d.Mask] = integers(d.maskType, []int64{batch, t + 1}, ones)
	}
	if d.Pos != "" {
		pos := make([]int64, batch)
		for i := range pos {
			pos[i] = t
		}
		feed[d.Pos] = integers(d.posType, []int64{batch, 1}, pos)
	}
}

// integers is v as a tensor of shape: int32 when dt says so, else int64.
func integers(dt tensor.DType, shape []int64, v []int64) tensor.Dense {
	if dt == tensor.Int32 {
		w := make([]int32, len(v))
		for i, x := range v {
			w[i] = int32(x)
		}
		t, _ := tensor.New(shape, w)
		return t
	}
	t, _ := tensor.New(shape, v)
	return t
}

// Source reads token sequences [N, T] from a .npy file for the token ids
// input; its description says they are decoded one position at a time.
func (d *Decoder) Source(path string) (Source, error) {
	src, err := FromNpy(path, []ort.ValueInfo{d.ids})
	if err != nil {
		return nil, err
	}
	return decodedSource{src}, nil
}

type decodedSource struct{ Source }

func (s decodedSource) Describe() string {
	return s.Source.Describe() + "; decoded one position at a time, each model feeding back its own key/value cache"
}

// LimitVocab caps the ids SyntheticSource draws at rows, the rows of the
// embedding table the ids index (graph.Graph.EmbeddingRows), when rows
// is known (> 0): a padded or tied output can be wider than the table,
// and the ids prune and quant draw come from the table.
func (d *Decoder) LimitVocab(rows int64) {
	if rows > 0 && (d.vocab <= 0 || rows < d.vocab) {
		d.vocab = rows
	}
}

// SyntheticSource makes samples token sequences of positions ids, drawn
// from a PCG stream seeded by seed, uniformly below the vocabulary (the
// logits' last size or LimitVocab's rows; [0, 2) when neither is known),
// decoded one position
// at a time like a .npy of them.
func (d *Decoder) SyntheticSource(samples, positions int64, seed uint64) (Source, error) {
	hi := max(d.vocab, 2)
	r := rand.New(rand.NewPCG(seed, 0))
	ids := make([]int64, samples*positions)
	for i := range ids {
		ids[i] = r.Int64N(hi)
	}
	t, err := tensor.New([]int64{samples, positions}, ids)
	if err != nil {
		return nil, err
	}
	src, err := FromArrays(map[string]tensor.Dense{d.IDs: t}, fmt.Sprintf("synthetic token sequences (seed %d, ids below %d)", seed, hi))
	if err != nil {
		return nil, err
	}
	return decodedSource{src}, nil
}
