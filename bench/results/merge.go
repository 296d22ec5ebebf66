package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pare-dev/pare/pruner"
)

// The allocation section takes hours for six models; run as one process
// per model (-models M -stdout > M.md), its pieces are joined by
// -merge M1.md,M2.md,...: the first file's introduction, every model's
// tables, and the default-against-best and proxy summaries over all of
// them, recomputed from the candidate tables' text.

const defaultHeading = "### Default against best"

// mergeAllocation joins allocation sections printed by -stdout; folds
// are sections of the same models measured with -rotate-calib, whose
// candidates' held-out scores give the cross-fitted ranking.
func mergeAllocation(files, folds []string) (string, error) {
	// With a fold per file, file i's searches pair with fold i's (the
	// same model measured on several draws); otherwise by model alone.
	paired := len(folds) == len(files)
	other := make([][]searchMeasured, len(folds))
	for i, f := range folds {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		doc := string(b)
		for _, blk := range strings.Split(doc, "\n### ")[1:] {
			fs, err := parseCandidates("### " + blk)
			if err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			other[i] = append(other[i], fs...)
		}
	}
	var intro, tables, lines strings.Builder
	var found []searchMeasured
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		doc := string(b)
		start := strings.Index(doc, "\n### ")
		end := strings.Index(doc, defaultHeading)
		if start < 0 || end < start {
			return "", fmt.Errorf("%s: no model table and %q in it", f, defaultHeading)
		}
		if i == 0 {
			head := doc[:start+1]
			if j := strings.Index(head, "\n\n"); strings.HasPrefix(head, "## ") && j >= 0 {
				head = head[j+2:] // the heading is the caller's
			}
			intro.WriteString(head)
		}
		block := doc[start+1 : end]
		tables.WriteString(block)
		fs, err := parseCandidates(block)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		folded := slices.Concat(other...)
		if paired {
			folded = other[i]
		}
		for k := range fs {
			fs[k].other = otherFold(fs[k], folded)
		}
		found = append(found, fs...)
		for _, l := range strings.Split(doc[end:], "\n") {
			if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| model (dense)") && !strings.HasPrefix(l, "|---") && strings.Contains(l, ": gap ") {
				lines.WriteString(l + "\n")
			}
		}
	}
	var b strings.Builder
	b.WriteString(intro.String())
	b.WriteString(tables.String())
	b.WriteString(defaultHeading + " (computed from the tables above)\n\n")
	b.WriteString("Accuracy of the default with `--calib` (the search) / the best other row of the model's table, points against dense in brackets, and the gap between them (negative: the default is above every row).\n\n")
	b.WriteString("| model (dense) | 50% default / best | 70% default / best |\n|---|---|---|\n")
	b.WriteString(lines.String())
	b.WriteString("\n")
	b.WriteString(proxySummary(found))
	return b.String(), nil
}

// otherFold returns the held-out scores of f's candidates in the
// matching search of other (same model and ratio), matched by name; a
// candidate the other fold lacks (a whole-groups twin of another pick)
// scores NaN. nil when no search matches.
func otherFold(f searchMeasured, other []searchMeasured) []pruner.HeldOutScore {
	for _, o := range other {
		if o.model != f.model || o.ratio != f.ratio {
			continue
		}
		out := make([]pruner.HeldOutScore, len(f.search.Candidates))
		for i, c := range f.search.Candidates {
			nan := math.NaN()
			out[i] = pruner.HeldOutScore{KL: nan, RelMSE: nan, Agreement: nan, PseudoCE: nan}
			for _, oc := range o.search.Candidates {
				if oc.Name == c.Name {
					out[i] = oc.Score
				}
			}
		}
		return out
	}
	return nil
}

// parseCandidates reads a model block's candidate table back (the
// columns candidateTable writes).
func parseCandidates(block string) ([]searchMeasured, error) {
	model := ""
	if strings.HasPrefix(block, "### ") {
		model = strings.Fields(block[4:])[0]
	}
	var out []searchMeasured
	in, soft := false, false
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "| ratio | candidate |") {
			in, soft = true, false
			continue
		}
		if strings.HasPrefix(l, "| ratio | path |") {
			in, soft = true, true
			continue
		}
		if !in || strings.HasPrefix(l, "|---") {
			continue
		}
		if !strings.HasPrefix(l, "| ") {
			in = false
			continue
		}
		f := strings.Split(strings.Trim(l, "| "), " | ")
		if soft {
			if err := readSoftRow(out, f); err != nil {
				return nil, fmt.Errorf("softmax row %q: %w", l, err)
			}
			continue
		}
		if len(f) != 9 || strings.HasPrefix(f[2], "failed") {
			continue
		}
		ratio, err := num(f[0])
		if err != nil {
			return nil, fmt.Errorf("candidate row %q: %w", l, err)
		}
		if len(out) == 0 || out[len(out)-1].ratio != ratio {
			out = append(out, searchMeasured{model: model, ratio: ratio, search: &pruner.Search{Picked: -1}})
		}
		s := &out[len(out)-1]
		name := f[1]
		if strings.HasSuffix(name, " (picked)") {
			s.search.Picked = len(s.search.Candidates)
			name = strings.Trim(strings.TrimSuffix(name, " (picked)"), "*")
		}
		v := make([]float64, 7)
		for j := range v {
			if v[j], err = num(f[2+j]); err != nil {
				return nil, fmt.Errorf("candidate row %q: %w", l, err)
			}
		}
		s.search.Candidates = append(s.search.Candidates, pruner.Tried{
			Candidate: pruner.Candidate{Name: name},
			Removed:   v[0],
			Score:     pruner.HeldOutScore{KL: v[1], RelMSE: v[2], Agreement: v[3]},
		})
		s.test = append(s.test, pruner.HeldOutScore{RelMSE: v[4], Agreement: v[5]})
		s.acc = append(s.acc, v[6])
	}
	return out, nil
}

// readSoftRow gives the candidate of out that row f (softProxyTable's
// columns) names its held-out pseudo-label cross-entropy and its test
// cross-entropy and KL.
func readSoftRow(out []searchMeasured, f []string) error {
	if len(f) != 6 {
		return nil
	}
	ratio, err := num(f[0])
	if err != nil {
		return err
	}
	v := make([]float64, 3)
	for j := range v {
		if v[j], err = num(f[2+j]); err != nil {
			return err
		}
	}
	for k := range out {
		if out[k].ratio != ratio {
			continue
		}
		for i, c := range out[k].search.Candidates {
			if c.Name == f[1] {
				out[k].search.Candidates[i].Score.PseudoCE = v[0]
				out[k].test[i].PseudoCE, out[k].test[i].KL = v[1], v[2]
				return nil
			}
		}
	}
	return fmt.Errorf("no candidate %q at %s", f[1], f[0])
}

// num parses "0.0223" or "91.0%" (a fraction).
func num(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		return v / 100, err
	}
	return strconv.ParseFloat(s, 64)
}
