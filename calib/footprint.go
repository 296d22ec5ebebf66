package calib

import "github.com/pare-dev/pare/graph"

// sizes holds the bytes of one sample of each value of a model, from the
// inferred shapes with symbolic dims taken as 1 (nil when inference
// failed). Values of unknown size count as the largest known one.
type sizes struct {
	bytes   map[string]int64
	largest int64
}

func estimate(m *graph.Model) sizes {
	sh, err := graph.InferShapes(m)
	if err != nil {
		return sizes{}
	}
	s := sizes{bytes: map[string]int64{}}
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Proto.Output {
			if t, ok := sh.Of(o); ok && o != "" {
				if e, ok := t.Elements(1); ok {
					if b, err := graph.ByteSize(t.Elem, e); err == nil {
						s.bytes[o] = b
						s.largest = max(s.largest, b)
					}
				}
			}
		}
	}
	return s
}

func (s sizes) of(name string) int64 {
	if b, ok := s.bytes[name]; ok {
		return b
	}
	return s.largest
}

// workingSet is the estimated memory of a one-sample run of a pass, in
// the units of sizes: the values it returns and the peak of what
// onnxruntime holds while it runs.
type workingSet struct {
	returned, peak int64
}

// workingSet walks m's nodes in order as onnxruntime runs them: each
// node's outputs are allocated, and an intermediate value is freed after
// its last reader, except returned values (the pass's names and the
// model's outputs), which live to the end of the run.
func (s sizes) workingSet(m *graph.Model, names []string) workingSet {
	if s.bytes == nil {
		return workingSet{}
	}
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
	}
	for _, o := range m.Graph.Proto.Output {
		keep[o.GetName()] = true
	}
	var w workingSet
	for n := range keep {
		w.returned += s.of(n)
	}
	last := map[string]int{}
	for i, n := range m.Graph.Nodes {
		for _, in := range n.Proto.Input {
			last[in] = i
		}
	}
	var live int64
	for i, n := range m.Graph.Nodes {
		for _, o := range n.Proto.Output {
			if _, ok := s.bytes[o]; ok {
				live += s.bytes[o]
			}
		}
		w.peak = max(w.peak, live)
		for _, o := range n.Proto.Output {
			if l, used := last[o]; (!used || l <= i) && !keep[o] {
				live -= s.bytes[o]
			}
		}
		for _, in := range n.Proto.Input {
			if last[in] == i && !keep[in] && s.bytes[in] > 0 {
				live -= s.bytes[in]
			}
		}
	}
	return w
}

// perSample turns the bytes a one-sample run returned into the memory a
// sample of the pass takes: those bytes twice (onnxruntime's values and
// their Go copies) plus the intermediates onnxruntime held beside them,
// scaled as the estimate of the returned bytes was to the measurement
// (symbolic dims such as a sequence length were estimated as 1).
func (w workingSet) perSample(returned int64) int64 {
	if w.returned <= 0 || w.peak <= w.returned {
		return 2 * returned
	}
	return returned + int64(float64(returned)*float64(w.peak)/float64(w.returned))
}
