package pruner

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/recovery"
)

// The default with --calib searches: no single path is best on every
// model (docs/RESULTS.md, "Allocation, compensation and steps"), so the
// strong data-aware paths are each run on a copy of the model with the
// calibration samples minus a held-out slice, scored by how closely the
// pruned copy follows the dense model on that slice (heldout.go); the
// best path is run again on every sample when it has one step, and its
// validated copy is kept when it has more.

// Candidate is one path the search tries: OBS scores and compensation
// with least-squares reconstruction, and the allocation, steps and
// group kinds named here.
type Candidate struct {
	Name     string `json:"name"`
	Allocate string `json:"allocate"` // global or sensitivity
	Steps    int    `json:"steps"`
	// PruneEmbed offers the embedding (residual) width to sensitivity
	// allocation; HeadDim prunes head dims instead of whole heads.
	PruneEmbed bool `json:"prune_embed,omitempty"`
	HeadDim    bool `json:"head_dim,omitempty"`
	// ConvGroups prunes grouped convolutions by whole groups (twin.go).
	ConvGroups bool `json:"conv_groups,omitempty"`
	// Ratio is the ratio the path was asked for when the target's own
	// left it short (retry.go); 0 is the target's.
	Ratio float64 `json:"ratio,omitempty"`
}

// SearchConfig tunes the search.
type SearchConfig struct {
	// OneStep keeps the one-step candidates only (a plan is written, or
	// the target is latency, which --steps does not take).
	OneStep bool
	// KeepModels keeps every candidate's pruned model in the outcome
	// (to measure them); otherwise only the best is kept.
	KeepModels bool
	// Candidates is "full" (every candidate), "one-step" (as OneStep)
	// or "auto" / "" (full up to SearchFullParams parameters, one-step
	// past it).
	Candidates string
}

// SearchFullParams is the model size, in parameters, up to which the
// default search tries the multi-step candidates: each costs about
// SearchSteps one-step runs, and one one-step run of obs + reconstruct
// takes minutes per GB of weights (docs/BENCHMARKS.md, "Default
// search"), so past it "auto" keeps to the one-step candidates.
var SearchFullParams int64 = 100_000_000

// SearchModes are the values of SearchConfig.Candidates.
var SearchModes = []string{"auto", "full", "one-step"}

// resolve settles "auto" for m: note says why the multi-step candidates
// are left out ("" when they are not, or were asked away).
func (sc *SearchConfig) resolve(m *graph.Model) (note string, err error) {
	switch sc.Candidates {
	case "full":
		return "", nil
	case "one-step":
		sc.OneStep = true
		return "", nil
	case "", "auto":
	default:
		return "", fmt.Errorf("prune: %w: --search %q: want one of %s", prune.ErrInvalidOption, sc.Candidates, strings.Join(SearchModes, ", "))
	}
	if sc.OneStep {
		return "", nil
	}
	c, err := graph.Count(m)
	if err != nil {
		return "", err
	}
	if c.Params <= SearchFullParams {
		return "", nil
	}
	sc.OneStep = true
	return fmt.Sprintf("search: one-step candidates only: %d parameters, past %d, where each %d-step candidate costs about %d one-step runs (--search full tries them)",
		c.Params, SearchFullParams, SearchSteps, SearchSteps), nil
}

// Tried is one candidate's result.
type Tried struct {
	Candidate
	Score HeldOutScore `json:"score"`
	// Removed is the fraction of the target the candidate removed.
	Removed float64 `json:"removed"`
	// FirstRemoved is what the path removed at the target's ratio when
	// it fell short and was pruned again at Ratio (retry.go).
	FirstRemoved float64 `json:"first_removed,omitempty"`
	// Fitted is the held-out score after the block fit, for the pick
	// and its whole-groups twin (twin.go).
	Fitted *HeldOutScore `json:"fitted,omitempty"`
	Err    string        `json:"error,omitempty"`
	// Model is the pruned copy (SearchConfig.KeepModels).
	Model *graph.Model `json:"-"`
}

// Search is the outcome of a search: the kept candidate's outcome and
// every candidate's score.
type Search struct {
	Picked     int     `json:"picked"` // index in Candidates
	Candidates []Tried `json:"candidates"`
	// FitSamples pruned and reconstructed, HeldOut scored.
	FitSamples int `json:"fit_samples"`
	HeldOut    int `json:"held_out"`
}

// SearchSteps is the step count of the multi-step candidates. With
// every step fitted to the unpruned model (recovery.Origin), 5 steps
// beat 3 on most paths measured (docs/RESULTS.md); 8 gained nothing
// more.
const SearchSteps = 5

// minHeldOut is the fewest held-out samples worth scoring on; with
// fewer calibration samples than 4× this the search is skipped.
const minHeldOut = 16

// SearchCandidates lists the candidates for m: global and sensitivity
// allocation, in one and in SearchSteps steps; sensitivity allocation
// offers the embedding width where m has one, and is tried with head
// dims where m has attention heads.
func SearchCandidates(m *graph.Model, opts prune.Options, sc SearchConfig) ([]Candidate, error) {
	cands, _, err := searchCandidates(m, opts, sc)
	return cands, err
}

// searchCandidates is SearchCandidates, and whether m has grouped
// convolutions pruned by offset (twinWanted), from the same analysis.
func searchCandidates(m *graph.Model, opts prune.Options, sc SearchConfig) ([]Candidate, bool, error) {
	kinds, an, err := prunableKinds(m, opts)
	if err != nil {
		return nil, false, err
	}
	headOpts := opts
	headOpts.HeadDim = true
	headKinds, _, err := prunableKinds(m, headOpts)
	if err != nil {
		return nil, false, err
	}
	steps := []int{1, SearchSteps}
	if sc.OneStep {
		steps = steps[:1]
	}
	var out []Candidate
	for _, n := range steps {
		out = append(out, Candidate{Allocate: "global", Steps: n})
		sens := Candidate{Allocate: "sensitivity", Steps: n, PruneEmbed: kinds[prune.KindEmbed]}
		out = append(out, sens)
		if kinds[prune.KindHeads] && headKinds[prune.KindHeadDim] {
			sens.HeadDim = true
			out = append(out, sens)
		}
	}
	for i := range out {
		out[i].Name = out[i].describe()
	}
	return out, len(an.OffsetConvs()) > 0, nil
}

func (c Candidate) describe() string {
	parts := []string{"obs + reconstruct", c.Allocate}
	if c.PruneEmbed {
		parts = append(parts, "embedding width")
	}
	if c.HeadDim {
		parts = append(parts, "head dims")
	}
	if c.ConvGroups {
		parts = append(parts, "whole groups")
	}
	if c.Steps > 1 {
		parts = append(parts, fmt.Sprintf("%d steps", c.Steps))
	}
	return strings.Join(parts, ", ")
}

// prunableKinds are the kinds of m's prunable groups, with the
// analysis they come from.
func prunableKinds(m *graph.Model, opts prune.Options) (map[string]bool, *prune.Analysis, error) {
	an, err := prune.Analyze(m, opts)
	if err != nil {
		return nil, nil, err
	}
	kinds := map[string]bool{}
	for _, g := range an.Prunable() {
		kinds[g.Kind] = true
	}
	return kinds, an, nil
}

// heldOutSplit returns the samples candidates prune with and the
// samples held out (a quarter, whole fixed batches), or 0 held out
// when there are too few to split.
func heldOutSplit(n, fixed int) (fit, held int) {
	held = n / 4
	if fixed > 1 {
		held -= held % fixed
	}
	if held < minHeldOut {
		return n, 0
	}
	return n - held, held
}

// RunSearch prunes m by the best candidate (cfg's criterion, allocation,
// steps and embedding/head-dim settings are the candidate's; the rest of
// cfg applies to every candidate). With cfg.DryRun m is left untouched
// and the outcome's plan is the best candidate's (its last step's);
// otherwise the best candidate (one step) is redone on m with every
// sample, or (more steps) its pruned copy becomes m. A
// --recover kd in cfg runs once, on the kept candidate.
func RunSearch(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, sc SearchConfig) (*Outcome, *Search, error) {
	if cfg.Calib == "" {
		return nil, nil, fmt.Errorf("prune: %w: the default search needs --calib data", prune.ErrInvalidOption)
	}
	if cfg.RecoverData != "" && cfg.RecoverKD == 0 {
		return nil, nil, fmt.Errorf("prune: %w: --recover-data without --recover kd", prune.ErrInvalidOption)
	}
	if err := fitRefusal(m, cfg); err != nil {
		return nil, nil, err
	}
	src, err := calib.Open(cfg.Calib, m, cfg.CalibSamples)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	budgetNote, err := sc.resolve(m)
	if err != nil {
		return nil, nil, err
	}
	cands, offsetConvs, err := searchCandidates(m, opts, sc)
	if err != nil {
		return nil, nil, err
	}
	fit, held := heldOutSplit(src.Len(), src.Fit(1))
	if held == 0 {
		// Too few samples to hold any out: the sensitivity path alone.
		for _, c := range cands {
			if c.Allocate == "sensitivity" && c.Steps == 1 && !c.HeadDim {
				cands = []Candidate{c}
				break
			}
		}
	}
	twin := twinWanted(offsetConvs, opts, cfg, held)
	s := &Search{FitSamples: fit, HeldOut: held}
	var h *heldOut
	if held > 0 {
		if h, err = newHeldOut(ctx, m, src, fit, fit+held, importanceBatch(cfg)); err != nil {
			return nil, nil, err
		}
	}
	var best *Outcome
	var bestModel *graph.Model
	s.Picked = -1
	for i, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		logf(cfg, "search: candidate %d of %d: %s", i+1, len(cands), c.Name)
		t, out, cp := tryCandidate(ctx, m, opts, cfg, c, fit, h)
		if !sc.KeepModels {
			t.Model = nil
		}
		s.Candidates = append(s.Candidates, t)
		if t.Err != "" {
			continue
		}
		if s.Picked < 0 || betterCandidate(t, s.Candidates[s.Picked], cfg.Settings) {
			s.Picked, best, bestModel = i, out, cp
			if c.Steps == 1 && held > 0 && !twin {
				// A one-step pick is redone on every sample below: its
				// copy is never installed.
				bestModel = nil
			}
		}
		// The candidate's copy and statistics are garbage now unless
		// kept: return them before the next candidate builds its own
		// (on a 421 MB decoder the heap otherwise grows past twice a
		// candidate's live data).
		runtime.GC()
		debug.FreeOSMemory()
	}
	if s.Picked < 0 {
		return nil, nil, fmt.Errorf("prune: search: every candidate failed; first: %s: %s", s.Candidates[0].Name, s.Candidates[0].Err)
	}
	var kept *twinPick
	var twinNote string
	if twin {
		pick := finalist{index: s.Picked, out: best, model: bestModel}
		if kept, twinNote, err = fitTwins(ctx, m, opts, cfg, src, s, pick, fit, h, sc.KeepModels); err != nil {
			return nil, nil, err
		}
		if kept != nil {
			s.Picked, best, bestModel = kept.index, kept.out, kept.model
		}
	}
	out := &Outcome{Plan: best.Plan, Sensitivity: best.Sensitivity, ForwardPasses: best.ForwardPasses}
	out.Notes = append(out.Notes, s.summary())
	if kept != nil {
		out.Notes = append(out.Notes, s.twinSummary(kept))
	} else if twinNote != "" {
		out.Notes = append(out.Notes, twinNote)
	}
	out.Notes = append(out.Notes, s.shortNotes(cfg.Settings)...)
	if budgetNote != "" {
		out.Notes = append(out.Notes, budgetNote)
	}
	out.Notes = append(out.Notes, best.Notes...)
	if cfg.DryRun {
		if s.Candidates[s.Picked].Steps > 1 {
			out.Notes = append(out.Notes, fmt.Sprintf("search: the allocation shown is the last of %d steps", s.Candidates[s.Picked].Steps))
		}
		return out, s, nil
	}
	dense, err := cloneModel(m)
	if err != nil {
		return nil, nil, err
	}
	if picked := s.Candidates[s.Picked]; held > 0 && picked.Steps == 1 {
		// A one-step path again on every sample: the held-out slice only
		// chose the path, and the fit gains from all the data. A
		// multi-step path's result moves with the samples it sees (by
		// up to 2.5 points on the trained ResNet with BatchNorm at 70%,
		// docs/RESULTS.md), so the copy the held-out slice validated is
		// kept instead.
		logf(cfg, "search: %s again on all %d samples", s.Candidates[s.Picked].Name, fit+held)
		var redoNote string
		if best, redoNote, err = redoOnTarget(ctx, m, dense, opts, cfg, s.Candidates[s.Picked].Candidate, fit+held); err != nil {
			return nil, nil, err
		}
		out.Plan, out.Sensitivity, out.ForwardPasses = best.Plan, best.Sensitivity, out.ForwardPasses+best.ForwardPasses
		out.Notes = append(out.Notes, fmt.Sprintf("search: %s redone on all %d calibration samples", s.Candidates[s.Picked].Name, fit+held))
		if redoNote != "" {
			out.Notes = append(out.Notes, redoNote)
		}
	} else {
		if sc.KeepModels {
			// The kept candidate stays as the search measured it: the
			// block fit below trains m's weights in place.
			if bestModel, err = cloneModel(bestModel); err != nil {
				return nil, nil, err
			}
		}
		install(m, bestModel)
	}
	blockSteps := cfg.FitBlocks
	if blockSteps < 0 {
		var note string
		blockSteps, note = autoFitSteps(m, src)
		if note != "" {
			out.Notes = append(out.Notes, "fit blocks: "+note)
		}
	}
	fitOutput := cfg.FitOutput
	if fitOutput < 0 {
		var note string
		var ref *graph.Model
		if best.origin != nil {
			ref = best.origin.Model
		}
		fitOutput, blockSteps, note = autoFitOutput(m, ref, src, blockSteps, cfg.FitBlocks < 0)
		if note != "" {
			out.Notes = append(out.Notes, "fit blocks: "+note)
		}
	}
	if blockSteps > 0 {
		notes, err := fitToOrigin(ctx, m, best.origin, src, recovery.BlockFitConfig{Steps: blockSteps, Output: fitOutput})
		switch {
		case err != nil && cfg.FitBlocks < 0 && ctx.Err() == nil:
			// The default's refinement is optional: a model it cannot
			// take keeps the search's pick (blocks fitted before the
			// failure keep their held-out-best weights).
			notes = []string{fmt.Sprintf("block fit stopped: %v", err)}
		case err != nil:
			return nil, nil, err
		}
		for _, n := range notes {
			out.Notes = append(out.Notes, "fit blocks: "+n)
		}
		if o := out.Plan.Settings.Options; o != nil {
			o.FitBlocks, o.FitOutput = blockSteps, fitOutput
		}
	}
	if cfg.RecoverKD > 0 {
		notes, err := distill(ctx, m, dense, src, cfg)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range notes {
			out.Notes = append(out.Notes, "recover kd: "+n)
		}
		if o := out.Plan.Settings.Options; o != nil {
			// The plan replays what was done, distillation included.
			o.RecoverKD, o.RecoverData = cfg.RecoverKD, cfg.RecoverData
			o.RecoverSchedule, o.RecoverMixup = kdSchedule(cfg), cfg.RecoverMixup
		}
	}
	return out, s, nil
}

// tryCandidate prunes a copy of m by c with the first fit samples and
// scores it on the held-out slice (no score when h is nil).
func tryCandidate(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, c Candidate, fit int, h *heldOut) (Tried, *Outcome, *graph.Model) {
	t := Tried{Candidate: c}
	cp, err := cloneModel(m)
	if err != nil {
		t.Err = err.Error()
		return t, nil, nil
	}
	before, err := graph.Count(cp)
	if err != nil {
		t.Err = err.Error()
		return t, nil, nil
	}
	// A pruned copy that cannot be counted fails: ranked as removing
	// nothing, it would pass for a short candidate.
	out, removed, err := runRemoving(ctx, cp, opts, cfg, c, fit, before)
	if err != nil {
		t.Err = err.Error()
		return t, nil, nil
	}
	t.Removed = removed
	if t.short(cfg.Settings) && c.Ratio == 0 {
		if r, rout, rcp := retryShort(ctx, m, opts, cfg, c, fit, before, t.Removed); r != nil {
			t.Candidate, t.FirstRemoved, t.Removed = r.Candidate, t.Removed, r.Removed
			out, cp = rout, rcp
		}
	}
	if h != nil {
		if t.Score, err = h.score(ctx, cp); err != nil {
			t.Err = err.Error()
			return t, nil, nil
		}
	}
	t.Model = cp
	return t, out, cp
}

// runCandidate prunes m in place by c with the first samples
// calibration samples (0: all), without distillation.
func runCandidate(ctx context.Context, m *graph.Model, opts prune.Options, cfg Config, c Candidate, samples int) (*Outcome, error) {
	cc := cfg
	cc.Settings.Criterion, cc.Reconstruct, cc.Allocate = "obs", true, c.Allocate
	cc.Settings.PruneEmbed, cc.Settings.HeadDim = c.PruneEmbed, c.HeadDim
	cc.CalibSamples, cc.RecoverKD, cc.RecoverData, cc.DryRun = samples, 0, "", false
	if c.Ratio > 0 {
		cc.Settings.Ratio = c.Ratio
	}
	// The block fit refines the pick alone, after the search.
	cc.keepOrigin, cc.FitBlocks = cfg.FitBlocks != 0, 0
	o := opts
	o.HeadDim = c.HeadDim
	if c.ConvGroups {
		o.ConvGroups, cc.Settings.ConvGroups = true, true
	}
	return RunSteps(ctx, m, o, cc, c.Steps)
}

// SearchShortfall is how far below the asked fraction of params or
// MACs a candidate may land and still compete on its held-out error. A
// candidate that removes less than asked follows the dense model more
// closely for that alone, so it is ranked after every candidate that
// reaches the target (a 5-step path on the ViT landed at 67.8% of an
// asked 70% and was picked on its error, docs/RESULTS.md).
const SearchShortfall = 0.01

// short reports whether t fell short of the target s asks for by more
// than SearchShortfall (never for a latency target, which the search
// does not count).
func (t Tried) short(s prune.Settings) bool {
	return (s.Target == "params" || s.Target == "macs") && t.Removed < s.Ratio-SearchShortfall
}

// betterCandidate reports whether a is to be picked over b: one that
// reaches the target over one that falls short, then the lower held-out
// relative output error.
func betterCandidate(a, b Tried, s prune.Settings) bool {
	if as, bs := a.short(s), b.short(s); as != bs {
		return bs
	}
	return a.Score.RelMSE < b.Score.RelMSE
}

func removedFraction(before, after graph.Counts, target string) float64 {
	if target == "macs" {
		return 1 - float64(after.MACs)/float64(max(before.MACs, 1))
	}
	return 1 - float64(after.Params)/float64(max(before.Params, 1))
}

// summary is the search's report line.
func (s *Search) summary() string {
	p := s.Candidates[s.Picked]
	if s.HeldOut == 0 {
		return fmt.Sprintf("search: %s (too few calibration samples to hold %d out and compare paths)", p.Name, minHeldOut)
	}
	return fmt.Sprintf("search: picked %s of %d candidates (held-out relative output error %.4g, KL %.4g, top-1 agreement %.1f%%; pruned on %d samples, scored on %d held out)",
		p.Name, len(s.Candidates), p.Score.RelMSE, p.Score.KL, 100*p.Score.Agreement, s.FitSamples, s.HeldOut)
}

// shortNotes name the candidates ranked last for falling short of the
// target, and say so when the pick is one of them.
func (s *Search) shortNotes(set prune.Settings) []string {
	var notes []string
	for i, c := range s.Candidates {
		if c.Err == "" && c.FirstRemoved > 0 {
			notes = append(notes, fmt.Sprintf("search: %s removed %.1f%% of %s, short of the %.1f%% asked: pruned again at %.1f%%, it removed %.1f%%",
				c.Name, 100*c.FirstRemoved, set.Target, 100*set.Ratio, 100*c.Ratio, 100*c.Removed))
		}
		if c.Err != "" || !c.short(set) {
			continue
		}
		if i == s.Picked {
			notes = append(notes, fmt.Sprintf("search: every candidate fell short of the %.1f%% of %s asked; %s removed %.1f%%", 100*set.Ratio, set.Target, c.Name, 100*c.Removed))
			continue
		}
		notes = append(notes, fmt.Sprintf("search: %s ranked last: it removed %.1f%% of %s, short of the %.1f%% asked", c.Name, 100*c.Removed, set.Target, 100*set.Ratio))
	}
	return notes
}

// cloneModel is a deep copy of m with its input shapes.
func cloneModel(m *graph.Model) (*graph.Model, error) {
	cp, err := graph.Clone(m)
	if err != nil {
		return nil, err
	}
	cp.InputShapes = m.InputShapes
	return cp, nil
}

// install makes m the pruned copy w, keeping m's file identity.
func install(m, w *graph.Model) {
	w.Path, w.Dir, w.External, w.InputShapes = m.Path, m.Dir, m.External, m.InputShapes
	*m = *w
}

func importanceBatch(cfg Config) int {
	if cfg.Batch > 0 {
		return cfg.Batch
	}
	return 64
}

func logf(cfg Config, format string, args ...any) {
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, format+"\n", args...)
	}
}
