package importance

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
)

// Magnitude scores an index by Σ|w|^P over its slices (see the package
// doc for the per-member normalisation).
type Magnitude struct{ P int }

// Name implements Scorer.
func (m Magnitude) Name() string { return fmt.Sprintf("magnitude-l%d", m.P) }

// Aggregation names how member scores combine, for plans.
const Aggregation = "member-mean-normalised mean of per-element |w|^p"

func scored(kind string) bool {
	return kind == prune.KindWeightOut || kind == prune.KindWeightIn || kind == prune.KindNormScale
}

// Score implements Scorer.
func (m Magnitude) Score(g *graph.Graph, grp *prune.Group) ([]float64, error) {
	total := make([]float64, grp.Size)
	count := make([]int, grp.Size)
	for _, mem := range grp.Members {
		if !scored(mem.Kind) {
			continue
		}
		s, err := m.memberScores(g, mem, grp.Size)
		if err != nil {
			return nil, err
		}
		var sum float64
		var n int
		for _, v := range s {
			if !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		mean := sum / float64(max(n, 1))
		for i, v := range s {
			if math.IsNaN(v) {
				continue
			}
			if mean > 0 {
				v /= mean
			}
			total[i] += v
			count[i]++
		}
	}
	for i := range total {
		if count[i] > 0 {
			total[i] /= float64(count[i])
		}
	}
	return total, nil
}

// memberScores returns the per-element mean of |w|^P for each index, NaN
// for indices the member does not cover.
func (m Magnitude) memberScores(g *graph.Graph, mem prune.Member, size int) ([]float64, error) {
	t, ok := g.Constant(mem.Tensor)
	if !ok {
		return nil, fmt.Errorf("member %q is not a constant", mem.Tensor)
	}
	var err error
	// FLOAT raw data is read in place: no decoded copy of every weight
	// (each is read twice on a large model, once per group it is in).
	var raw []byte
	var w []float32
	if graph.DataTypeOf(t) == onnx.TensorProto_FLOAT && t.RawData != nil {
		if raw, err = graph.RawBytes(t); err != nil {
			return nil, err
		}
	} else if w, err = graph.Float32s(t); err != nil {
		return nil, err
	}
	d := t.Dims
	if mem.Axis >= len(d) || int(d[mem.Axis]) != len(mem.Map) {
		return nil, fmt.Errorf("member %q dims %v do not match its map", mem.Tensor, d)
	}
	outer, inner := int64(1), int64(1)
	for _, x := range d[:mem.Axis] {
		outer *= x
	}
	for _, x := range d[mem.Axis+1:] {
		inner *= x
	}
	n := int64(len(mem.Map))
	sum := make([]float64, size)
	cnt := make([]int64, size)
	for o := int64(0); o < outer; o++ {
		for p := int64(0); p < n; p++ {
			idx := mem.Map[p]
			if idx < 0 || idx >= size {
				continue
			}
			base := (o*n + p) * inner
			for k := int64(0); k < inner; k++ {
				var x float32
				if raw != nil {
					x = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(base+k):]))
				} else {
					x = w[base+k]
				}
				v := math.Abs(float64(x))
				if m.P == 2 {
					v *= v
				}
				sum[idx] += v
			}
			cnt[idx] += inner
		}
	}
	for i := range sum {
		if cnt[i] == 0 {
			sum[i] = math.NaN()
		} else {
			sum[i] /= float64(cnt[i])
		}
	}
	return sum, nil
}
