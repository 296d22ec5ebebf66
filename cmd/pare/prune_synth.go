package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/quant"
	"github.com/pare-dev/pare/tensor"
)

// The default without --calib. Magnitude alone ranks channels by weight
// norms, which say little across layers whose scales differ (batch norms
// folded into the weights, as exporters write them): on the trained
// Fashion-MNIST CNNs it loses 10 to 65 points at 10% of the parameters
// removed (docs/RESULTS.md, "The default without calibration data").
// Synthesized inputs (N(0, 1) floats, token ids over the embedding
// table's rows: quant.SyntheticDataset) do not show what real data
// would, but they do show which channels the outputs lean on and how an
// OBS update can stand in for a removed one: OBS scores with sensitivity
// allocation on them keep those models usable where magnitude breaks
// them. Past synthMaxParams the probes' forward passes (one per group)
// would cost what a plain magnitude prune does not, so magnitude stays.

// synthSamples is the most synthesized calibration samples, and
// synthMinSamples the fewest; between them, as many as keep the
// model's multiply-accumulates over all of them within synthMACs
// (scoring and the sensitivity probes run them once per group, and an
// image transformer at 224×224 did not finish in 10 minutes with 128).
const (
	synthSamples    = 128
	synthMinSamples = 16
	synthMACs       = 2e11
)

// synthCount is the number of samples synthesized for a model of c,
// at most most.
func synthCount(c graph.Counts, most int) int {
	n := int(synthMACs / float64(max(c.MACs, 1)))
	return min(max(n, synthMinSamples), most)
}

// synthMaxParams is the largest model the default without --calib
// synthesizes inputs for.
const synthMaxParams = 100_000_000

// synthesizeCalib writes synthesized calibration inputs for m to a
// temporary file (.npz, one array per input) and returns its path, the
// samples in it (synthCount), what they are, and a function that
// removes it. A decoding step whose key/value cache is graph inputs
// (check.Decoder) is calibrated on the steps of decoding random token
// sequences, its cache grown by the model itself, since a cache drawn
// independently of its mask fits no step. When m is past synthMaxParams, its inputs
// cannot be synthesized, or onnxruntime (loaded from ortLib) cannot run
// it on them (a range the model checks), path is "" and why says so:
// the caller falls back to magnitude, which needs no inputs.
func synthesizeCalib(ctx context.Context, m *graph.Model, seed uint64, ortLib string) (path, what, why string, samples int, cleanup func(), err error) {
	cleanup = func() {}
	c, err := graph.Count(m)
	if err != nil {
		return "", "", "", 0, cleanup, err
	}
	if c.Params > synthMaxParams {
		return "", "", fmt.Sprintf("%d parameters, past the %d up to which inputs are synthesized", c.Params, synthMaxParams), 0, cleanup, nil
	}
	sess, err := modelSession(m, ortLib)
	if err != nil {
		return "", "", err.Error(), 0, cleanup, nil
	}
	defer sess.Close()
	var arrays map[string]tensor.Dense
	var n int
	if dec, derr := check.NewDecoder(sess); derr == nil {
		what = fmt.Sprintf("decoding steps at position %d of random token sequences, the cache grown by the model", synthPositions-1)
		arrays, n, err = decodedInputs(ctx, m, sess, dec, randomTokens(m, dec, seed), synthPositions, synthCount(c, synthSamples*synthPositions))
	} else {
		what = "N(0, 1) floats, token ids over the embedding rows"
		n = synthCount(c, synthSamples)
		arrays, err = synthesizedInputs(ctx, m, sess, n, seed)
	}
	if err != nil {
		return "", "", err.Error(), 0, cleanup, nil
	}
	if path, cleanup, err = writeTempNpz(arrays); err != nil {
		return "", "", "", 0, cleanup, fmt.Errorf("prune: synthesized calibration inputs: %w", err)
	}
	return path, what, "", n, cleanup, nil
}

// writeTempNpz writes arrays to a .npz in a new temporary folder and
// returns its path and a function that removes the folder.
func writeTempNpz(arrays map[string]tensor.Dense) (string, func(), error) {
	dir, err := os.MkdirTemp("", "pare-calib-*")
	if err != nil {
		return "", func() {}, err
	}
	path := filepath.Join(dir, "inputs.npz")
	if err := tensor.WriteNpzFile(path, arrays, false); err != nil {
		os.RemoveAll(dir)
		return "", func() {}, err
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// modelSession opens m in onnxruntime, loaded from ortLib.
func modelSession(m *graph.Model, ortLib string) (*ort.Session, error) {
	if err := ort.Init(ortLib); err != nil {
		return nil, err
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return ort.NewSession(b, ort.Options{Threads: 1})
}

// synthesizedInputs makes n samples of quant.SyntheticDataset and runs
// the first two (a static batch's worth when m has one) in sess.
func synthesizedInputs(ctx context.Context, m *graph.Model, sess *ort.Session, n int, seed uint64) (map[string]tensor.Dense, error) {
	d, err := quant.SyntheticDataset(m, n, seed)
	if err != nil {
		return nil, err
	}
	try := 2
	if fixed := int(graph.FixedBatch(m)); fixed > 0 {
		try = fixed
	}
	in, err := d.Batch(0, min(try, d.Len()))
	if err != nil {
		return nil, err
	}
	if _, err := sess.Run(ctx, in, []string{sess.Outputs()[0].Name}); err != nil {
		return nil, err
	}
	return d.Batch(0, n)
}
