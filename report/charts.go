package report

import (
	"fmt"
	"html/template"
	"strings"
)

// ChangeChart draws each figure after the run as a fraction of before:
// params, MACs, size and latency; 1 (the dashed line) is "unchanged".
func (r *Run) ChangeChart() template.HTML {
	var bars []Bar
	for _, f := range []struct {
		name          string
		before, after *int64
	}{
		{"params", r.Before.Params, r.After.Params},
		{"MACs", r.Before.MACs, r.After.MACs},
		{"size", r.Before.SizeBytes, r.After.SizeBytes},
		{"latency", r.Before.LatencyNs, r.After.LatencyNs},
	} {
		if v, ok := ratio(f.before, f.after); ok {
			bars = append(bars, Bar{Label: f.name, Value: v, Text: fmt.Sprintf("%.1f%% of before", 100*v), Mark: v > 1})
		}
	}
	if len(bars) == 0 {
		return ""
	}
	return BarChart("After as a fraction of before", bars, 1)
}

// LayerChart draws channels kept per coupled group (structured pruning)
// or weights kept per layer (unstructured).
func (r *Run) LayerChart() template.HTML {
	if len(r.Layers) == 0 {
		return ""
	}
	bars := make([]Bar, len(r.Layers))
	for i, l := range r.Layers {
		v := 1.0
		if l.Size > 0 {
			v = float64(l.Kept) / float64(l.Size)
		}
		text := fmt.Sprintf("%d/%d kept", l.Kept, l.Size)
		if l.Frozen != "" {
			text += " (frozen)"
		}
		bars[i] = Bar{Label: l.Name, Value: v, Text: text, Mark: l.Frozen != ""}
	}
	return BarChart("Kept per layer (channels per coupled group, or non-zero weights)", bars, 1)
}

// AllocationChart draws the structured allocation: the fraction of each
// coupled group removed, labelled by kind, with the group's measured
// sensitivity when the run measured one; frozen groups are marked.
func (r *Run) AllocationChart() template.HTML {
	var bars []Bar
	for _, l := range r.Layers {
		if l.Kind == "" {
			continue
		}
		v := 0.0
		if l.Size > 0 {
			v = 1 - float64(l.Kept)/float64(l.Size)
		}
		text := fmt.Sprintf("%.0f%% removed (%d/%d kept)", 100*v, l.Kept, l.Size)
		if l.Sensitivity != nil {
			text += fmt.Sprintf(", sens. %.3g", *l.Sensitivity)
		}
		if l.Frozen != "" {
			text = "frozen"
		}
		bars = append(bars, Bar{Label: l.Kind + " " + l.Name, Value: v, Text: text, Mark: l.Frozen != ""})
	}
	if len(bars) == 0 {
		return ""
	}
	return BarChart("Allocation: fraction of each coupled group removed", bars, 1)
}

// ScatterChart plots every run's quality against its MACs after, one
// series per model, with the Pareto front ringed and joined.
func (s *Summary) ScatterChart() template.HTML {
	var pts []ScatterPoint
	quality := ""
	for _, r := range s.Runs {
		p, ok := point(&r.Run)
		if !ok {
			continue
		}
		_, name, _ := r.After.Quality()
		if quality == "" {
			quality = name
		} else if quality != name {
			quality = "accuracy or top-1 agreement"
		}
		label := fmt.Sprintf("%s %s: %s MACs, %s %.4f", r.Model, fmtSetting(r.Setting), fmtCount(r.After.MACs), name, p.Quality)
		pts = append(pts, ScatterPoint{X: p.Cost, Y: p.Quality, Label: label, Series: r.Model, Front: r.Pareto, Tag: shortSetting(r.Setting)})
	}
	if len(pts) == 0 {
		return ""
	}
	return Scatter(quality+" against MACs (ringed: Pareto front)", "MACs after (batch 1)", quality, pts)
}

// MACsChart draws each run's MACs after as a fraction of its input's.
func (s *Summary) MACsChart() template.HTML {
	var bars []Bar
	models := map[string]bool{}
	for _, r := range s.Runs {
		models[r.Model] = true
	}
	for _, r := range s.Runs {
		if v, ok := ratio(r.Before.MACs, r.After.MACs); ok {
			label := r.Model
			switch {
			case len(models) == 1 && len(r.Setting) > 0:
				label = shortSetting(r.Setting)
			case len(r.Setting) > 0:
				label += " " + shortSetting(r.Setting)
			}
			bars = append(bars, Bar{Label: label, Value: v, Text: fmt.Sprintf("%.1f%% of MACs", 100*v), Mark: r.Status != RunPassed})
		}
	}
	if len(bars) == 0 {
		return ""
	}
	return BarChart("MACs after as a fraction of the input's (accent: run did not pass)", bars, 1)
}

// shortSetting writes a setting's values without their step names
// ("ratio=0.3 criterion=random"), for chart labels.
func shortSetting(ps []Param) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		k := p.Key
		if _, opt, ok := strings.Cut(k, "."); ok {
			k = opt
		}
		parts[i] = k + "=" + p.Value
	}
	return strings.Join(parts, " ")
}
