package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// A decoding step whose key/value cache is graph inputs (check.Decoder)
// is calibrated on what generation feeds it: token sequences
// synthPositions long are decoded by the model one position at a time,
// and each sample is the step at the last position with the cache the
// positions before it left. The tokens are random without --calib
// (prune_synth.go) and windows of the given sequences with a .npy of
// token ids [N, T] (stepCalib, for pare prune and pare quant). A sample is one token, so a step gets
// synthPositions times the samples (the tokens a whole-sequence model of
// the same sizes sees), as long as they hold within synthDecodeBytes
// (the caches: past lengths × heads × layers). On the trained character
// decoder as a step, 128 random samples left perplexity 17.6 at 50% of
// the parameters removed, 2048 gave 9.5.
const (
	synthPositions   = 16
	synthDecodeBytes = 256 << 20
	decodeChunk      = 64 // sequences decoded at once
)

// tokenSource gives up to k token sequences of the source's width, laid
// end to end, and how many it gave (0 once it has run out).
type tokenSource func(k int) ([]int64, int)

// randomTokens draws ids uniformly over the embedding's rows, from seed.
// The source is nil when m has no embedding table for dec's ids.
func randomTokens(m *graph.Model, dec *check.Decoder, seed uint64) tokenSource {
	rows := m.Graph.EmbeddingRows(dec.IDs)
	if rows <= 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, 0x5eed_dec0de))
	return func(k int) ([]int64, int) {
		ids := make([]int64, k*synthPositions)
		for i := range ids {
			ids[i] = r.Int64N(rows)
		}
		return ids, k
	}
}

// windowTokens hands out windows of synthPositions ids (the whole row
// when T is shorter) of ids [N, T] in row order: up to want of them,
// each row's starts spread evenly over it (overlapping where the rows
// are few), so that the samples cover every row alike.
func windowTokens(ids []int64, rows, cols, want int) (src tokenSource, width, total int) {
	width = min(cols, synthPositions)
	per := min(max((want+rows-1)/rows, 1), cols-width+1)
	total = min(rows*per, want) // fewer wanted than rows: the first rows, as --calib-samples takes them
	next := 0
	src = func(k int) ([]int64, int) {
		k = min(k, total-next)
		out := make([]int64, 0, k*width)
		for w := next; w < next+k; w++ {
			row, j := w/per, w%per
			off := 0
			if per > 1 {
				off = j * (cols - width) / (per - 1)
			}
			out = append(out, ids[row*cols+off:row*cols+off+width]...)
		}
		next += k
		return out, k
	}
	return src, width, total
}

// decodedInputs makes up to n samples for a decoding step: sequences
// of width tokens, each decoded by dec up to its last position, whose
// inputs are the sample. Sequences are decoded decodeChunk at a time (a
// static batch's worth when the model has one, and then only whole
// chunks), and n is cut to what fits within synthDecodeBytes. It
// returns the samples and their count.
func decodedInputs(ctx context.Context, m *graph.Model, sess *ort.Session, dec *check.Decoder, tokens tokenSource, width, n int) (map[string]tensor.Dense, int, error) {
	if tokens == nil {
		return nil, 0, fmt.Errorf("no embedding table indexed by the token ids %s, so no range to draw them from", dec.IDs)
	}
	chunk, fixed := min(n, decodeChunk), int(graph.FixedBatch(m))
	if fixed > 0 {
		chunk = fixed
	}
	var parts []map[string]tensor.Dense
	got := 0
	for got < n {
		ids, k := tokens(min(chunk, n-got))
		if k == 0 || fixed > 0 && k < fixed {
			break
		}
		t, err := tensor.New([]int64{int64(k), int64(width)}, ids)
		if err != nil {
			return nil, 0, err
		}
		feed, err := dec.StepInputs(ctx, sess, t)
		if err != nil {
			return nil, 0, fmt.Errorf("decoding tokens: %w", err)
		}
		if got == 0 {
			// The step itself runs on what it will be calibrated on, and
			// its first chunk sizes the rest.
			if _, err := sess.Run(ctx, feed, []string{dec.Logits}); err != nil {
				return nil, 0, fmt.Errorf("decoding tokens: step %d: %w", width-1, err)
			}
			bytes := 0
			for _, v := range feed {
				bytes += v.Len() * v.DType.Size()
			}
			n = min(n, max(synthDecodeBytes/max(bytes, 1), 1)*k)
		}
		parts = append(parts, feed)
		got += k
	}
	if len(parts) == 0 {
		return nil, 0, fmt.Errorf("no token sequence to decode (a static batch of %d)", fixed)
	}
	out := map[string]tensor.Dense{}
	for name := range parts[0] {
		col := make([]tensor.Dense, len(parts))
		for i, p := range parts {
			col[i] = p[name]
		}
		var err error
		if out[name], err = tensor.Concat(col...); err != nil {
			return nil, 0, err
		}
	}
	return out, got, nil
}

// stepCalib makes the calibration inputs of a decoding step (cmd
// names the command in errors): from a .npy of token sequences [N, T]
// (path, the form pare check decodes), windows of synthPositions tokens,
// up to most of them (windowTokens); with no path, most sequences of
// random tokens from seed. Each is decoded and sampled at its last
// position, and the samples are written to a temporary .npz whose path
// it returns with a note saying so and a function that removes it. npz
// is "" when m is not a decoding step (or onnxruntime cannot open it) or
// path is not a .npy: the data, or the command's own synthesized inputs,
// then go to the model as they are.
func stepCalib(ctx context.Context, cmd string, m *graph.Model, path string, most int, seed uint64, ortLib string) (npz, note string, cleanup func(), err error) {
	cleanup = func() {}
	if path != "" && !strings.EqualFold(filepath.Ext(path), ".npy") || !hasCache(m) {
		return "", "", cleanup, nil
	}
	sess, err := modelSession(m, ortLib)
	if err != nil {
		return "", "", cleanup, nil
	}
	defer sess.Close()
	dec, err := check.NewDecoder(sess)
	if err != nil {
		return "", "", cleanup, nil
	}
	tokens, width, what := randomTokens(m, dec, seed), synthPositions, "random token sequences"
	if path != "" {
		what = path
		var total int
		if tokens, width, total, err = fileTokens(path, dec, most); err != nil {
			return "", "", cleanup, usageErrorf("%s: --calib %s: %v", cmd, path, err)
		}
		most = total
	}
	arrays, n, err := decodedInputs(ctx, m, sess, dec, tokens, width, most)
	if err != nil {
		return "", "", cleanup, fmt.Errorf("%s: calibrating the decoding step on %s: %w", cmd, what, err)
	}
	if npz, cleanup, err = writeTempNpz(arrays); err != nil {
		return "", "", cleanup, fmt.Errorf("%s: decoded calibration inputs: %w", cmd, err)
	}
	note = fmt.Sprintf("calibration: %s decoded one position at a time, %d steps at position %d, each with the cache the positions before it left", what, n, width-1)
	return npz, note, cleanup, nil
}

// fileTokens reads token sequences [N, T] from the .npy at path and
// hands out up to most of their windows (windowTokens).
func fileTokens(path string, dec *check.Decoder, most int) (tokenSource, int, int, error) {
	f, err := tensor.OpenNpy(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	shape := f.Shape()
	if len(shape) != 2 || !f.DType().IsInteger() || shape[0] == 0 || shape[1] == 0 {
		return nil, 0, 0, fmt.Errorf("%s%v, want token ids [sequences, positions] for the decoding step's %s (or an .npz with one array per input)", f.DType(), shape, dec.IDs)
	}
	all, err := f.ReadAll()
	if err != nil {
		return nil, 0, 0, err
	}
	ids, err := all.Int64s()
	if err != nil {
		return nil, 0, 0, err
	}
	src, width, total := windowTokens(ids, int(shape[0]), int(shape[1]), most)
	return src, width, total, nil
}

// hasCache reports whether m's inputs and outputs pair a past with a
// present (check.HasCache), before any session is opened.
func hasCache(m *graph.Model) bool {
	names := func(vs []*graph.Value) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Name
		}
		return out
	}
	return check.HasCache(names(m.Graph.Inputs), names(m.Graph.Outputs))
}
