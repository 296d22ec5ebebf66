package prune

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// PlanFormat versions the plan JSON.
const PlanFormat = 1

// Plan is a replayable pruning decision. Groups lists every group of the
// model, frozen ones too, with its members; Kept lists the kept indices
// of each prunable group.
type Plan struct {
	Format   int         `json:"format"`
	Tool     string      `json:"tool"`
	Settings Settings    `json:"settings"`
	Before   Cost        `json:"before"`
	After    Cost        `json:"after"`
	Groups   []PlanGroup `json:"groups"`
}

// PlanGroup is one group of a plan.
type PlanGroup struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Size    int      `json:"size"`
	Frozen  bool     `json:"frozen,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Inexact string   `json:"inexact,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Members []Member `json:"members"`
	Kept    []int    `json:"kept,omitempty"`
}

// ToolName is recorded in plans; cmd/pare sets the version.
var ToolName = "pare dev"

func (a *Analysis) newPlan(s Settings, keep map[int][]int, before, after Cost) *Plan {
	p := &Plan{Format: PlanFormat, Tool: ToolName, Settings: s, Before: before, After: after}
	for _, g := range a.Groups {
		pg := PlanGroup{ID: g.ID, Name: g.Name, Size: g.Size, Frozen: g.Frozen, Reason: g.Reason,
			Inexact: g.Inexact, Kind: g.Kind, Members: g.Members}
		if !g.Frozen {
			pg.Kept = keep[g.ID]
			if pg.Kept == nil {
				pg.Kept = seq(0, g.Size)
			}
		}
		p.Groups = append(p.Groups, pg)
	}
	return p
}

// Keep returns the plan's kept indices per prunable group.
func (p *Plan) Keep() map[int][]int {
	out := map[int][]int{}
	for _, g := range p.Groups {
		if !g.Frozen {
			out[g.ID] = g.Kept
		}
	}
	return out
}

// WritePlan writes p as indented JSON.
func WritePlan(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("prune: write plan: %w", err)
	}
	return nil
}

// ReadPlan reads a plan.
func ReadPlan(r io.Reader) (*Plan, error) {
	var p Plan
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("prune: read plan: %w: %w", ErrPlanInvalid, err)
	}
	if p.Format != PlanFormat {
		return nil, fmt.Errorf("prune: %w: plan format %d, want %d", ErrPlanMismatch, p.Format, PlanFormat)
	}
	return &p, nil
}

// Check verifies that p describes this analysis: the same groups, sizes,
// frozen status and members with the same index maps, and kept indices
// that are sorted, distinct, in range and not empty.
func (a *Analysis) Check(p *Plan) error {
	if len(p.Groups) != len(a.Groups) {
		return fmt.Errorf("prune: %w: plan has %d groups, model %d", ErrPlanMismatch, len(p.Groups), len(a.Groups))
	}
	for i, pg := range p.Groups {
		g := a.Groups[i]
		if pg.ID != g.ID || pg.Size != g.Size || pg.Frozen != g.Frozen || len(pg.Members) != len(g.Members) {
			return fmt.Errorf("prune: %w: group %d (%s): plan says size %d frozen %v with %d members, model has size %d frozen %v with %d members",
				ErrPlanMismatch, g.ID, g.Name, pg.Size, pg.Frozen, len(pg.Members), g.Size, g.Frozen, len(g.Members))
		}
		for j, m := range pg.Members {
			gm := g.Members[j]
			if m.Tensor != gm.Tensor || m.Axis != gm.Axis || !m.Map.Equal(gm.Map) {
				return fmt.Errorf("prune: %w: group %d member %d: plan has %s axis %d, model %s axis %d (or a different index map)",
					ErrPlanMismatch, g.ID, j, m.Tensor, m.Axis, gm.Tensor, gm.Axis)
			}
		}
		if g.Frozen {
			continue
		}
		if len(pg.Kept) == 0 || !sort.IntsAreSorted(pg.Kept) {
			return fmt.Errorf("prune: %w: group %d: kept indices must be sorted and not empty", ErrPlanMismatch, g.ID)
		}
		for k, x := range pg.Kept {
			if x < 0 || x >= g.Size || (k > 0 && pg.Kept[k-1] == x) {
				return fmt.Errorf("prune: %w: group %d: kept index %d out of range or repeated", ErrPlanMismatch, g.ID, x)
			}
		}
	}
	return nil
}

// ApplyPlan checks p against the analysis and applies it.
func (a *Analysis) ApplyPlan(p *Plan) error {
	if err := a.Check(p); err != nil {
		return err
	}
	return a.Apply(p.Keep())
}
