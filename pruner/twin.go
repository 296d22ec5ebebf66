package pruner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// A grouped convolution (1 < group < channels) loses channels one of
// two ways: the same offset in every group, or whole groups
// (prune.Options.ConvGroups). Which keeps more accuracy depends on the
// ratio, and the held-out score before the block fit ranks the two
// wrongly (docs/RESULTS.md, "A model with grouped convolutions"): the
// fit recovers more from one than from the other. So when the default
// fits, its pick is tried again with whole groups, a copy of each is
// fitted on the samples that pruned them, and the one whose copy
// follows the dense model more closely on the held-out slice is kept:
// the search then goes on with it as with any pick (a one-step path is
// pruned again on every sample, and the fit runs on every sample; on
// 256 images the fit of the 192 alone lost a point). After the fit
// the two are compared by the measure the fit minimised on the model
// output: the KL of the softmax for logits, the relative
// MSE otherwise (on the RegNet-style fixture at 70% the relative MSE
// picked whole groups, 0.7 point below offsets on the test images; the
// KL picked offsets).

// twinWanted reports whether the search tries its pick with whole
// groups: the model has grouped convolutions pruned by offset
// (prune.Analysis.OffsetConvs), the held-out slice can compare, and
// the block fit is not off.
func twinWanted(offsetConvs bool, opts prune.Options, cfg Config, held int) bool {
	return offsetConvs && !opts.ConvGroups && held > 0 && cfg.FitBlocks != 0 && !cfg.DryRun
}

// twinPick is the kept one of the pick and its twin, as pruned (not
// fitted): the search goes on with it as with any pick.
type twinPick struct {
	index int // in Search.Candidates
	out   *Outcome
	model *graph.Model
	byKL  bool // compared by the held-out KL, else the relative error
	steps int  // of the comparison's fits
}

// finalist is a pruned copy the twin comparison fits.
type finalist struct {
	index int
	out   *Outcome
	model *graph.Model
}

// fitTwins tries the pick of s with whole groups on the first fit
// samples of src, fits a copy of each on those samples and scores it
// on h. It returns the better, unfitted, or nil with a note when the
// twin fails or either fit would be skipped: the search's pick then
// goes on as without the twin. keep keeps the twin's copy in s.
func fitTwins(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, src *calib.Source, s *Search, pick finalist, fit int, h *heldOut, keep bool) (*twinPick, string, error) {
	if pick.out.origin == nil {
		return nil, "search: whole groups not compared: the pruned path kept no unpruned model to fit toward", nil
	}
	part, err := calib.Open(cfg.Calib, m, fit)
	if err != nil {
		return nil, "", err
	}
	defer part.Close()
	// A pick the default would not fit (past the budget, say) is not
	// compared, and its twin not pruned.
	pickFit, note := finalistFit(cfg, pick.model, pick.out.origin.Model, src, part)
	if pickFit.Steps == 0 {
		return nil, "search: whole groups not compared without the block fit: " + note, nil
	}
	c := s.Candidates[s.Picked].Candidate
	c.ConvGroups = true
	c.Name = c.describe()
	logf(cfg, "search: %s, to compare after the block fit", c.Name)
	t, out, cp := tryCandidate(ctx, m, opts, cfg, c, fit, h)
	if !keep {
		t.Model = nil
	}
	s.Candidates = append(s.Candidates, t)
	if t.Err != "" {
		return nil, fmt.Sprintf("search: whole groups not compared: %s", t.Err), nil
	}
	if pick.model != nil && sameShapes(pick.model, cp) {
		// Whole groups took the channels offsets took (the grouped
		// Convs kept theirs): the two fits would be of one model.
		return nil, "search: whole groups not compared: the path removes no channel of a grouped convolution either way", nil
	}
	if out.origin == nil {
		return nil, "search: whole groups not compared: the pruned path kept no unpruned model to fit toward", nil
	}
	twinFit, note := finalistFit(cfg, cp, out.origin.Model, src, part)
	if twinFit.Steps == 0 {
		return nil, "search: whole groups not compared without the block fit: " + note, nil
	}
	twin := finalist{index: len(s.Candidates) - 1, out: out, model: cp}
	byKL, err := recovery.OutputByKL(m, part)
	if err != nil {
		return nil, "", err
	}
	var kept *twinPick
	for _, f := range []struct {
		finalist
		fc recovery.BlockFitConfig
	}{{pick, pickFit}, {twin, twinFit}} {
		fc := f.fc
		// A copy is fitted: the pick goes on as pruned, to be pruned
		// again on every sample (one step) or fitted on every sample.
		fitted, err := cloneModel(f.model)
		if err != nil {
			return nil, "", err
		}
		logf(cfg, "search: fitting %s on %d samples", s.Candidates[f.index].Name, fit)
		_, err = fitToOrigin(ctx, fitted, f.out.origin, part, fc)
		switch {
		case err != nil && cfg.FitBlocks < 0 && ctx.Err() == nil:
			// As after the search: the default's fit is optional.
			return nil, fmt.Sprintf("search: whole groups not compared: block fit stopped: %v", err), nil
		case err != nil:
			return nil, "", err
		}
		score, err := h.score(ctx, fitted)
		if err != nil {
			return nil, "", err
		}
		s.Candidates[f.index].Fitted = &score
		if kept == nil || betterFitted(s.Candidates[f.index], s.Candidates[kept.index], byKL, cfg.Settings) {
			kept = &twinPick{index: f.index, out: f.out, model: f.model, byKL: byKL, steps: fc.Steps}
		}
	}
	return kept, "", nil
}

// sameShapes reports whether a and b have the same initializers with
// the same dims and the same Conv group counts: two prunes of one model
// that removed as many channels everywhere.
func sameShapes(a, b *graph.Model) bool {
	av, bv := a.Graph.Values(), b.Graph.Values()
	dims := map[string][]int64{}
	n := 0
	for _, v := range av {
		if v.Initializer != nil {
			dims[v.Name] = v.Initializer.GetDims()
			n++
		}
	}
	for _, v := range bv {
		if v.Initializer == nil {
			continue
		}
		d, ok := dims[v.Name]
		if !ok || !slices.Equal(d, v.Initializer.GetDims()) {
			return false
		}
		n--
	}
	if n != 0 || len(a.Graph.Nodes) != len(b.Graph.Nodes) {
		return false
	}
	for i, node := range a.Graph.Nodes {
		if node.Op() == "Conv" && node.IntAttr("group", 1) != b.Graph.Nodes[i].IntAttr("group", 1) {
			return false
		}
	}
	return true
}

// finalistFit is the block fit of a finalist m (pruned from ref) on the
// part of the calibration samples that pruned it: the user's
// --fit-blocks and --fit-output, or, where the default would fit,
// AutoFitSteps steps with the default's output weight on all the
// samples. A comparison needs the ranking, not the fit's last points:
// on the RegNet-style fixture on 1024 images 200 steps kept what 480
// kept at 50% and 70% (docs/RESULTS.md, "A model with grouped
// convolutions").
func finalistFit(cfg Config, m, ref *graph.Model, all, part *calib.Source) (recovery.BlockFitConfig, string) {
	steps := cfg.FitBlocks
	if steps < 0 {
		var note string
		if steps, note = autoFitStepsWithin(m, part, fitBudget(all.Len())); steps == 0 {
			if note == "" {
				note = "the model is not cut into blocks on this data"
			}
			return recovery.BlockFitConfig{}, note
		}
		steps = min(steps, AutoFitSteps)
	}
	output := cfg.FitOutput
	if output < 0 {
		output, steps, _ = autoFitOutput(m, ref, all, steps, cfg.FitBlocks < 0)
	}
	return recovery.BlockFitConfig{Steps: steps, Output: output}, ""
}

// betterFitted reports whether fitted a is kept over fitted b: one that
// reaches the target over one that falls short, then the lower
// held-out KL (byKL) or relative output error after the fit.
func betterFitted(a, b Tried, byKL bool, s prune.Settings) bool {
	if as, bs := a.short(s), b.short(s); as != bs {
		return bs
	}
	if byKL {
		return a.Fitted.KL < b.Fitted.KL
	}
	return a.Fitted.RelMSE < b.Fitted.RelMSE
}

// twinSummary is the report line of the comparison that kept k.
func (s *Search) twinSummary(k *twinPick) string {
	measure, of := "relative output error", func(h *HeldOutScore) float64 { return h.RelMSE }
	if k.byKL {
		measure, of = "KL", func(h *HeldOutScore) float64 { return h.KL }
	}
	var parts []string
	for _, c := range s.Candidates {
		if c.Fitted != nil {
			parts = append(parts, fmt.Sprintf("%s %.4g", c.Name, of(c.Fitted)))
		}
	}
	return fmt.Sprintf("search: grouped convolutions by offset or by whole groups, compared after a block fit of %d steps per block on the %d samples that pruned them (held-out %s: %s): kept %s",
		k.steps, s.FitSamples, measure, strings.Join(parts, ", "), s.Candidates[k.index].Name)
}
