package report

// Point is a run's cost (MACs) and quality, for the Pareto front.
type Point struct {
	Cost, Quality float64
}

// ParetoFront returns, for each point, whether it is on the front of
// low cost and high quality: no other point has cost ≤ and quality ≥
// with at least one strict. Equal points are all on the front.
func ParetoFront(pts []Point) []bool {
	on := make([]bool, len(pts))
	for i, p := range pts {
		on[i] = true
		for j, q := range pts {
			if j != i && q.Cost <= p.Cost && q.Quality >= p.Quality && (q.Cost < p.Cost || q.Quality > p.Quality) {
				on[i] = false
				break
			}
		}
	}
	return on
}

// MarkPareto sets Pareto on the runs on their model's front. Runs
// without MACs or a quality figure after are never on it.
func MarkPareto(runs []RunEntry) {
	byModel := map[string][]int{}
	for i := range runs {
		runs[i].Pareto = false
		if _, ok := point(&runs[i].Run); ok {
			byModel[runs[i].Model] = append(byModel[runs[i].Model], i)
		}
	}
	for _, idx := range byModel {
		pts := make([]Point, len(idx))
		for k, i := range idx {
			pts[k], _ = point(&runs[i].Run)
		}
		for k, on := range ParetoFront(pts) {
			runs[idx[k]].Pareto = on
		}
	}
}

func point(r *Run) (Point, bool) {
	q, _, ok := r.After.Quality()
	if !ok || r.After.MACs == nil {
		return Point{}, false
	}
	return Point{Cost: float64(*r.After.MACs), Quality: q}, true
}
