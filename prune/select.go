package prune

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Settings chooses what to remove.
type Settings struct {
	Criterion   string  `json:"criterion"`
	Aggregation string  `json:"aggregation,omitempty"`
	Scope       string  `json:"scope"`  // global or local
	Target      string  `json:"target"` // channels, params, macs or latency (latency.go)
	Ratio       float64 `json:"ratio"`
	// MaxLayerRatio caps the fraction of any group removed: a group of n
	// keeps at least max(1, ⌈(1−MaxLayerRatio)·n⌉).
	MaxLayerRatio float64 `json:"max_layer_ratio"`
	// RoundTo makes kept counts multiples of RoundTo (never above the
	// group size, never below one); 0 and 1 keep exact counts. Groups of
	// attention heads are not rounded. The command line's default is
	// DefaultRoundTo.
	RoundTo int `json:"round_to,omitempty"`
	// RoundSoft marks RoundTo as a default rather than a request: when
	// rounded counts cannot land on a params or MACs target (small
	// groups, such as 16 channels rounded to 8), Select keeps exact
	// counts instead of failing.
	RoundSoft bool `json:"-"`
	// RoundNarrow, when above 0, is what a group narrower than
	// 8·RoundTo channels rounds to instead of RoundTo: rounding a
	// 64-channel group to 16 would leave it only four widths. The
	// command line's default pairs DefaultRoundTo with
	// DefaultRoundNarrow.
	RoundNarrow int    `json:"-"`
	Ignore      string `json:"ignore,omitempty"`
	Seed        uint64 `json:"seed,omitempty"`
	// Options records data-driven criteria and recovery settings.
	Options *CriterionOptions `json:"options,omitempty"`
	// KindRatios removes a fraction of the channels of every kind it
	// names (KindHeads, KindMLP, KindEmbed, ...): with Scope global,
	// round(r·N) of the N channels of all groups of the kind, lowest
	// scores first; with Scope local, ⌊r·n⌋ of each group's n. The floor
	// (MaxLayerRatio) and RoundTo apply. Groups of other kinds follow
	// Ratio and Target.
	KindRatios map[string]float64 `json:"kind_ratios,omitempty"`
	// PruneEmbed lets groups of kind embed (widths normalised by a layer
	// norm) be selected by Ratio; without it they stay whole unless
	// KindRatios names them.
	PruneEmbed bool `json:"prune_embed,omitempty"`
	// HeadDim records that the analysis ran with Options.HeadDim, so
	// that a plan replays with the same groups.
	HeadDim bool `json:"head_dim,omitempty"`
	// KVGroups records that the analysis ran with Options.KVGroups
	// (--kv-groups), so that a plan replays with it.
	KVGroups bool `json:"kv_groups,omitempty"`
	// KeepInterface records that the analysis ran with
	// Options.KeepInterface (a KV cache's heads frozen), so that a
	// replay analyses alike.
	KeepInterface bool `json:"keep_interface,omitempty"`
	// ConvGroups records that the analysis ran with Options.ConvGroups
	// (whole groups of grouped convolutions), so that a plan replays
	// with it.
	ConvGroups bool `json:"conv_groups,omitempty"`
	// nearest: a latency target under default rounding takes the
	// rounded selection closest to the target rather than failing
	// (Select).
	nearest bool
}

// DefaultRoundTo is the command line's --round-to: onnxruntime runs
// convolutions in its blocked NCHWc layout only when channel counts are
// multiples of the block, 16 floats with AVX-512 (8 with AVX2, which 16
// also satisfies); other counts fall back to NCHW kernels with layout
// reorders around them. Free counts made pruned MobileNetV2 and
// EfficientNet-B0 slower than dense, and 8 left DenseNet-121 and
// MobileNetV2 short of their MACs (docs/PRUNING.md, "Rounding").
const DefaultRoundTo = 16

// DefaultRoundNarrow is the command line's rounding of groups narrower
// than 8·DefaultRoundTo (128) channels, where multiples of 16 would be
// too coarse: onnxruntime's AVX2 kernels block by 8.
const DefaultRoundNarrow = 8

// targetTolerance is how close, as a fraction of the model's total,
// parameter and MAC targets must land (else ErrTarget); selection stops
// refining once within targetStep.
const (
	targetTolerance = 0.02
	targetStep      = 0.002
	// maxRefine bounds the cost evaluations of closer.
	maxRefine = 400
)

// closer moves a global selection (removals per group, taken as a prefix
// of the candidate order seq) toward a reduction of want, one candidate
// at a time: below want it adds later candidates, above it drops taken
// ones, keeping each change that brings the reduction nearer. A group
// whose next change does not help is skipped from then on (its channels
// cost the same). It stops within step of want or after maxRefine tries.
func closer(rm map[int]int, seq []int, want float64, red func(map[int]int) float64, step float64) map[int]int {
	cur := red(rm)
	taken := 0
	for _, n := range rm {
		taken += n
	}
	skip := map[int]bool{}
	try := func(gid, d int) {
		if skip[gid] || rm[gid]+d < 0 {
			return
		}
		rm[gid] += d
		if v := red(rm); math.Abs(v-want) < math.Abs(cur-want) {
			cur = v
			return
		}
		rm[gid] -= d
		skip[gid] = true
	}
	tries := 0
	if cur < want {
		for i := taken; i < len(seq) && math.Abs(cur-want) > step && tries < maxRefine; i++ {
			if !skip[seq[i]] {
				tries++
				try(seq[i], 1)
			}
		}
	} else {
		for i := min(taken, len(seq)) - 1; i >= 0 && math.Abs(cur-want) > step && tries < maxRefine; i-- {
			if !skip[seq[i]] && rm[seq[i]] > 0 {
				tries++
				try(seq[i], -1)
			}
		}
	}
	return rm
}

// closerRounded is closer for rounded selections: it moves one group at
// a time to its next rounded kept count (fewer or more channels, within
// its limit), each time the move that lands the reduction nearest want,
// until within step or no move helps. Rounding leaves gaps in what a
// selection can remove (one step of a narrow group was a tenth of
// EfficientNet-B0's estimated latency), which the bisection over the
// candidate order cannot cross; other groups' steps fill them.
func closerRounded(rm map[int]int, groups []*Group, limit map[int]int, s Settings, want float64, red func(map[int]int) float64, step float64) map[int]int {
	cur := red(rm)
	for tries := 0; tries < maxRefine && math.Abs(cur-want) > step; {
		best, bestN, bestV := -1, 0, cur
		for _, g := range groups {
			n := nextRounded(g, s, rm[g.ID], limit[g.ID], cur < want)
			if n == rm[g.ID] {
				continue
			}
			tries++
			old := rm[g.ID]
			rm[g.ID] = n
			if v := red(rm); math.Abs(v-want) < math.Abs(bestV-want) {
				best, bestN, bestV = g.ID, n, v
			}
			rm[g.ID] = old
		}
		if best < 0 {
			break
		}
		rm[best], cur = bestN, bestV
	}
	return rm
}

// nextRounded returns g's removal count at its next rounded kept count:
// fewer kept (more removed, at most limit) when more is true.
func nextRounded(g *Group, s Settings, removed, limit int, more bool) int {
	st := max(s.roundStep(g), 1)
	keep := g.Size - removed
	if more {
		keep = (keep - 1) / st * st
		if keep < 1 || g.Size-keep > limit {
			return removed
		}
	} else {
		keep = min((keep/st+1)*st, g.Size)
	}
	return g.Size - keep
}

func (s *Settings) validate() error {
	if s.Scope == "" {
		s.Scope = "global"
	}
	if s.Target == "" {
		s.Target = "channels"
	}
	switch {
	case math.IsNaN(s.Ratio) || s.Ratio < 0 || s.Ratio >= 1:
		return fmt.Errorf("prune: %w: ratio %v not in [0, 1)", ErrInvalidOption, s.Ratio)
	case math.IsNaN(s.MaxLayerRatio) || s.MaxLayerRatio <= 0 || s.MaxLayerRatio >= 1:
		return fmt.Errorf("prune: %w: max layer ratio %v not in (0, 1)", ErrInvalidOption, s.MaxLayerRatio)
	case s.RoundTo < 0:
		return fmt.Errorf("prune: %w: round-to %d", ErrInvalidOption, s.RoundTo)
	case s.Scope != "global" && s.Scope != "local":
		return fmt.Errorf("prune: %w: scope %q (want global or local)", ErrInvalidOption, s.Scope)
	case s.Target != "channels" && s.Target != "params" && s.Target != "macs" && s.Target != "latency":
		return fmt.Errorf("prune: %w: target %q (want channels, params, macs or latency)", ErrInvalidOption, s.Target)
	}
	for k, r := range s.KindRatios {
		switch k {
		case KindHeads, KindHeadDim, KindKVGroups, KindMLP, KindEmbed, KindChannels:
		default:
			return fmt.Errorf("prune: %w: group kind %q", ErrInvalidOption, k)
		}
		if math.IsNaN(r) || r < 0 || r >= 1 {
			return fmt.Errorf("prune: %w: %s ratio %v not in [0, 1)", ErrInvalidOption, k, r)
		}
	}
	return nil
}

// selectable splits the prunable groups into those that Ratio and Target
// select from and those with a ratio of their own (KindRatios); embed
// groups are in neither unless PruneEmbed or KindRatios names them.
func (a *Analysis) selectable(s Settings) (free, fixed []*Group) {
	for _, g := range a.Prunable() {
		if _, ok := s.KindRatios[g.Kind]; ok {
			fixed = append(fixed, g)
			continue
		}
		if s.Selects(g) {
			free = append(free, g)
		}
	}
	return free, fixed
}

// Selects reports whether selection under s may remove channels of
// prunable group g: every group but an embed group that neither
// PruneEmbed nor KindRatios names. Statistics for the others are wasted
// work (on a decoder, the Hessians of every projection reading the
// residual stream).
func (s Settings) Selects(g *Group) bool {
	if _, ok := s.KindRatios[g.Kind]; ok {
		return true
	}
	return g.Kind != KindEmbed || s.PruneEmbed
}

func (s Settings) minKeep(g *Group) int {
	k := int(math.Ceil((1 - s.MaxLayerRatio) * float64(g.Size)))
	return s.roundKeep(max(k, 1), g)
}

// roundKeep rounds a kept count up so that the kept channels are a
// multiple of RoundTo: an index several channels wide (a MatMulNBits
// block) needs fewer indices per step. Attention heads and KV groups
// are never rounded: each is already head_dim channels wide (or more),
// and a multiple of 8 heads would forbid most head counts.
func (s Settings) roundKeep(k int, g *Group) int {
	k = max(k, 1)
	if step := s.roundStep(g); step > 1 && !g.segmented() {
		k = (k + step - 1) / step * step
	}
	return min(k, g.Size)
}

// roundStep is the multiple of indices that kept counts of g round to:
// RoundTo channels, fewer indices when each index is several channels
// wide; 1 for heads and without RoundTo.
func (s Settings) roundStep(g *Group) int {
	r, w := s.RoundTo, max(g.width, 1)
	if r > 1 && s.RoundNarrow > 0 && g.Size*w < 8*r {
		r = s.RoundNarrow
	}
	if r <= 1 || g.Kind == KindHeads || g.Kind == KindKVGroups {
		return 1
	}
	return r / gcd(r, w)
}

// kept returns, sorted, the indices of g that stay when the first
// removed indices of order go. With RoundTo, the kept count of each of
// g's segments (segments.go) is then rounded up to a multiple of RoundTo
// (at most the segment's size; a segment left empty stays empty) by
// keeping back its last removed, most important, indices. For a group
// of one segment this is roundKeep.
func (s Settings) kept(g *Group, order []int, removed int) []int {
	removed = min(max(removed, 0), len(order))
	in := make([]bool, g.Size)
	for _, i := range order[removed:] {
		in[i] = true
	}
	if step := s.roundStep(g); step > 1 && g.segmented() {
		size := make([]int, g.segments)
		keep := make([]int, g.segments)
		for i := range g.Size {
			size[g.segment[i]]++
			if in[i] {
				keep[g.segment[i]]++
			}
		}
		for j := removed - 1; j >= 0; j-- {
			i := order[j]
			if sg := g.segment[i]; keep[sg] > 0 && keep[sg]%step != 0 && keep[sg] < size[sg] {
				in[i] = true
				keep[sg]++
			}
		}
	}
	out := make([]int, 0, g.Size-removed)
	for i, k := range in {
		if k {
			out = append(out, i)
		}
	}
	return out
}

// Select turns scores (group id → one score per index) into a plan.
func (a *Analysis) Select(scores map[int][]float64, s Settings) (*Plan, error) {
	if s.RoundSoft && s.RoundTo > 1 {
		hard := s
		hard.RoundSoft = false
		p, err := a.Select(scores, hard)
		if !errors.Is(err, ErrTarget) {
			return p, err
		}
		if s.Target == "latency" {
			// Free counts defeat onnxruntime's kernels, which is what
			// a latency target budgets (EfficientNet-B0 at exact
			// counts ran 1.3–1.5× dense): keep rounded counts, the
			// selection closest to the target. The measured plan
			// (cmd/pare) corrects the rest.
			hard.nearest = true
			return a.Select(scores, hard)
		}
		hard.RoundTo = 1
		return a.Select(scores, hard)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	groups, fixed := a.selectable(s)
	both := append(append([]*Group{}, groups...), fixed...)
	for _, g := range both {
		if len(scores[g.ID]) != g.Size {
			return nil, fmt.Errorf("prune: group %d has %d scores for %d indices", g.ID, len(scores[g.ID]), g.Size)
		}
	}
	// order[g] lists a group's indices from least to most important,
	// except that indices that must stay for a cover (cover.go) come
	// after the removable ones; maxRm[g] is how many may go.
	order := map[int][]int{}
	maxRm := map[int]int{}
	coverNote := ""
	for _, g := range both {
		idx := make([]int, g.Size)
		for i := range idx {
			idx[i] = i
		}
		sc := scores[g.ID]
		sort.SliceStable(idx, func(x, y int) bool { return sc[idx[x]] < sc[idx[y]] })
		order[g.ID], maxRm[g.ID] = g.removalOrder(idx)
		if maxRm[g.ID] < g.Size-s.minKeep(g) {
			coverNote = " (and the channels kept so that no tensor is left empty)"
		}
	}
	// fixedRm: removals of the groups with a kind ratio of their own.
	fixedRm, err := kindRemovals(fixed, order, maxRm, scores, s)
	if err != nil {
		return nil, err
	}
	var pick func(x float64) map[int]int // removal count per group
	var seq []int                        // global: candidate groups in removal order
	var hi float64
	limit := map[int]int{} // global: the most removals per group
	ncand := 0
	if s.Scope == "local" {
		pick = func(r float64) map[int]int {
			rm := map[int]int{}
			for _, g := range groups {
				keep := g.Size - int(math.Floor(r*float64(g.Size)+1e-9))
				keep = max(keep, s.minKeep(g), g.Size-maxRm[g.ID])
				rm[g.ID] = g.Size - s.roundKeep(keep, g)
			}
			return rm
		}
		hi = 1
	} else {
		type cand struct {
			score      float64
			group, pos int
		}
		for _, g := range groups {
			limit[g.ID] = min(g.Size-s.minKeep(g), maxRm[g.ID])
		}
		var all []cand
		for _, g := range groups {
			for pos, i := range order[g.ID][:limit[g.ID]] {
				all = append(all, cand{scores[g.ID][i], g.ID, pos})
			}
		}
		sort.SliceStable(all, func(x, y int) bool {
			if all[x].score != all[y].score {
				return all[x].score < all[y].score
			}
			if all[x].group != all[y].group {
				return all[x].group < all[y].group
			}
			return all[x].pos < all[y].pos
		})
		// Only candidates within each group's limit, in global order.
		var seqList []int
		taken := map[int]int{}
		for _, c := range all {
			if taken[c.group] < limit[c.group] {
				taken[c.group]++
				seqList = append(seqList, c.group)
			}
		}
		ncand, seq = len(seqList), seqList
		pick = func(x float64) map[int]int {
			c := int(math.Round(x * float64(len(seqList))))
			rm := map[int]int{}
			for _, gid := range seqList[:c] {
				rm[gid]++
			}
			for _, g := range groups {
				if rm[g.ID] > 0 {
					rm[g.ID] = g.Size - s.roundKeep(g.Size-rm[g.ID], g)
				}
			}
			return rm
		}
		hi = 1
	}
	keepOf := func(rm map[int]int) map[int][]int {
		keep := map[int][]int{}
		for _, g := range groups {
			keep[g.ID] = s.kept(g, order[g.ID], rm[g.ID])
		}
		for _, g := range fixed {
			keep[g.ID] = s.kept(g, order[g.ID], fixedRm[g.ID])
		}
		return keep
	}
	before := a.Cost()
	var rm map[int]int
	switch s.Target {
	case "channels":
		total := 0
		for _, g := range groups {
			total += g.Size
		}
		if s.Scope == "local" {
			rm = pick(s.Ratio)
		} else {
			// fraction of all prunable channels, reached through the
			// candidates that respect the limits
			want := int(math.Round(s.Ratio * float64(total)))
			if want > ncand {
				return nil, fmt.Errorf("prune: %w: %d channels asked, at most %d removable under max-layer-ratio %v%s",
					ErrTarget, want, ncand, s.MaxLayerRatio, coverNote)
			}
			rm = pick(float64(want) / float64(max(ncand, 1)))
		}
	default:
		if s.Target == "latency" && a.latency == nil {
			return nil, fmt.Errorf("prune: %w: target latency needs a latency model (Analysis.SetLatency)", ErrInvalidOption)
		}
		metric := func(c Cost) float64 { return c.Of(s.Target) }
		total := metric(before)
		want := s.Ratio * total
		red := func(x float64) float64 {
			return total - metric(a.costOf(a.prunedSet(keepOf(pick(x)))))
		}
		if red(hi) < want-targetTolerance*total && s.nearest {
			want = red(hi)
		}
		if red(hi) < want-targetTolerance*total {
			return nil, fmt.Errorf("prune: %w: %s reduction %.1f%% asked, at most %.1f%% under max-layer-ratio %v%s",
				ErrTarget, s.Target, 100*s.Ratio, 100*red(hi)/total, s.MaxLayerRatio, coverNote)
		}
		lo, up := 0.0, hi
		for range 40 {
			mid := (lo + up) / 2
			if red(mid) >= want {
				up = mid
			} else {
				lo = mid
			}
		}
		x := up
		if math.Abs(red(lo)-want) < math.Abs(red(up)-want) {
			x = lo
		}
		rm = pick(x)
		redOf := func(rm map[int]int) float64 { return total - metric(a.costOf(a.prunedSet(keepOf(rm)))) }
		if s.Scope != "local" && s.RoundTo <= 1 {
			// One removal can be a whole head (a few percent of a small
			// model): fill the gap with the next candidates that fit.
			rm = closer(rm, seq, want, redOf, targetStep*total)
		}
		if s.Target == "latency" && s.Scope != "local" && s.RoundTo > 1 && math.Abs(redOf(rm)-want) > targetTolerance*total {
			rm = closerRounded(rm, groups, limit, s, want, redOf, targetStep*total)
		}
		if got := redOf(rm); math.Abs(got-want) > targetTolerance*total && !s.nearest {
			return nil, fmt.Errorf("prune: %w: %s reduction %.1f%% asked, the closest selection removes %.1f%% (groups are too coarse; try --round-to 1, another ratio or --target channels)",
				ErrTarget, s.Target, 100*s.Ratio, 100*got/total)
		}
	}
	keep := keepOf(rm)
	after := a.costOf(a.prunedSet(keep))
	return a.newPlan(s, keep, before, after), nil
}

// prunedSet converts kept indices into removed class roots.
func (a *Analysis) prunedSet(keep map[int][]int) map[int32]bool {
	out := map[int32]bool{}
	for gid, idx := range keep {
		grp := a.Groups[gid]
		in := make([]bool, grp.Size)
		for _, i := range idx {
			if i >= 0 && i < grp.Size {
				in[i] = true
			}
		}
		for i, k := range in {
			if !k {
				out[grp.units[i]] = true
			}
		}
	}
	return out
}

// SyntheticCalib is the calibration file a plan records when the data
// was synthesized from the model's inputs (pare prune's default without
// --calib) rather than read.
const SyntheticCalib = "synthetic"

// CriterionOptions are the settings of data-driven criteria and of the
// recovery steps, recorded in plans so that a replay redoes them.
type CriterionOptions struct {
	// Calib is the calibration file (SyntheticCalib: inputs pare
	// synthesized, made again on replay) and CalibSamples the samples
	// used (0: all); DataFree replaces data by BatchNormalization
	// statistics.
	Calib        string `json:"calib,omitempty"`
	CalibSamples int    `json:"calib_samples,omitempty"`
	DataFree     bool   `json:"data_free,omitempty"`
	// Damping is the fraction of H's mean diagonal added before inversion
	// (OBS).
	Damping float64 `json:"damping,omitempty"`
	// Compensate: the OBS weight update was applied to consumer layers.
	Compensate bool `json:"compensate,omitempty"`
	// Zeroth-order allocation: the local criterion inside each group,
	// the largest fraction any group loses, the perturbation size, the
	// loss, the seed, the bound and count of forward passes.
	ZOLocal   string  `json:"zo_local,omitempty"`
	ZOSMax    float64 `json:"zo_smax,omitempty"`
	ZOEpsilon float64 `json:"zo_epsilon,omitempty"`
	ZOLoss    string  `json:"zo_loss,omitempty"`
	ZOBudget  int     `json:"zo_budget,omitempty"`
	ZOPasses  int     `json:"zo_passes,omitempty"`
	// Modules lists the module of each prunable group (module criterion).
	Modules map[string]string `json:"modules,omitempty"`
	// Recovery after pruning.
	RecalibrateBN bool `json:"recalibrate_bn,omitempty"`
	Reconstruct   bool `json:"reconstruct,omitempty"`
	// ReconstructBlocks fits a residual block's last layer to the dense
	// block output (with Reconstruct).
	ReconstructBlocks bool `json:"reconstruct_blocks,omitempty"`
	// FitBlocks is the Adam steps per block of the gradient block fit
	// after the last step (--fit-blocks), 0 for none.
	FitBlocks int `json:"fit_blocks,omitempty"`
	// FitOutput is the weight of the model output in each inner
	// block's loss of that fit (--fit-output), 0 for none.
	FitOutput float64 `json:"fit_output,omitempty"`
	// RecoverKD is the distillation steps (--recover kd), 0 for none.
	RecoverKD int `json:"recover_kd_steps,omitempty"`
	// RecoverData is the file of unlabelled inputs distilled on
	// (--recover-data), empty for the calibration data.
	RecoverData string `json:"recover_data,omitempty"`
	// RecoverSchedule is the distillation's learning-rate schedule
	// (constant or cosine; empty in plans that predate it: constant),
	// RecoverMixup whether it trained on mixes of two inputs.
	RecoverSchedule string `json:"recover_schedule,omitempty"`
	RecoverMixup    bool   `json:"recover_mixup,omitempty"`
}
