package importance

import (
	"fmt"
	"sort"

	"github.com/pare-dev/pare/prune"
)

// planByRank is the module criterion under kind ratios (--heads,
// --kv-groups, --mlp, --embed) or a params/MACs target: every channel's
// score becomes its rank within its module, scaled to (0, 1), and
// prune.Select ranks those globally. Removing the lowest ranks up to a
// threshold takes the same fraction from every module (DIMAP's module
// shares), and lets Select meet a kind ratio or a params/MACs target
// the way it does for every criterion; inside a module the order is the
// module scores'.
func (mo *Module) planByRank(an *prune.Analysis, s prune.Settings, scores map[int][]float64) (*prune.Plan, error) {
	type ref struct{ group, idx int }
	byMod := map[string][]ref{}
	for _, grp := range an.Prunable() {
		mod := mo.Modules[grp.ID]
		s.Options.Modules[fmt.Sprint(grp.ID)] = mod
		for i := range scores[grp.ID] {
			byMod[mod] = append(byMod[mod], ref{grp.ID, i})
		}
	}
	ranked := map[int][]float64{}
	for _, grp := range an.Prunable() {
		ranked[grp.ID] = make([]float64, grp.Size)
	}
	for _, rs := range byMod {
		sort.SliceStable(rs, func(a, b int) bool {
			return scores[rs[a].group][rs[a].idx] < scores[rs[b].group][rs[b].idx]
		})
		for k, r := range rs {
			ranked[r.group][r.idx] = (float64(k) + 0.5) / float64(len(rs))
		}
	}
	return an.Select(ranked, s)
}
