package importance

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
)

// Magnitude scores an index by Σ|w|^P over its slices (see the package
// doc for the per-member normalisation).
type Magnitude struct {
	P     int
	cache *magCache
}

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
		addNormalised(total, count, s)
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
	d := t.Dims
	if mem.Axis >= len(d) || int(d[mem.Axis]) != len(mem.Map) {
		return nil, fmt.Errorf("member %q dims %v do not match its map", mem.Tensor, d)
	}
	var sums []float64
	if m.cache != nil {
		sums = m.cache.get(mem.Tensor, mem.Axis)
	}
	if sums == nil {
		all, err := axisSums(t, m.P, []int{mem.Axis})
		if err != nil {
			return nil, err
		}
		sums = all[mem.Axis]
	}
	numel := int64(1)
	for _, x := range d {
		numel *= x
	}
	per := numel / max(d[mem.Axis], 1) // elements per position of the axis
	sum := make([]float64, size)
	cnt := make([]int64, size)
	for p, idx := range mem.Map {
		if idx < 0 || idx >= size {
			continue
		}
		sum[idx] += sums[p]
		cnt[idx] += per
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

// axisSums returns, for each of the axes, Σ|w|^p over the elements at
// each position of that axis, in one pass over the tensor. FLOAT raw data
// is read in place, without a decoded copy.
func axisSums(t *onnx.TensorProto, p int, axes []int) (map[int][]float64, error) {
	// Summed once: mapped weights need not stay resident afterwards.
	defer graph.Release(t)
	var raw, mapped []byte
	var w []float32
	var err error
	if graph.DataTypeOf(t) == onnx.TensorProto_FLOAT && t.RawData != nil {
		if raw, err = graph.RawBytes(t); err != nil {
			return nil, err
		}
		mapped = raw
		// On a little-endian machine, aligned raw data is already the
		// float32 array: read it as such.
		if len(raw) > 0 && nativeLittle && uintptr(unsafe.Pointer(&raw[0]))%4 == 0 {
			w, raw = unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), len(raw)/4), nil
		}
	} else if w, err = graph.Float32s(t); err != nil {
		return nil, err
	}
	d := t.Dims
	last := 0
	for _, a := range axes {
		if a < 0 || a >= len(d) {
			return nil, fmt.Errorf("tensor %q: axis %d of %v", t.GetName(), a, d)
		}
		last = max(last, a)
	}
	// Blocks: the contiguous elements after the last axis summed first.
	inner := int64(1)
	for _, x := range d[last+1:] {
		inner *= x
	}
	blocks := int64(1)
	for _, x := range d[:last+1] {
		blocks *= x
	}
	sums := make([][]float64, len(axes))
	for i, a := range axes {
		sums[i] = make([]float64, d[a])
	}
	coord := make([]int64, last+1) // block coordinates, last axis fastest
	var released int64
	for b := int64(0); b < blocks; b++ {
		base := b * inner
		bs := 0.0
		if raw != nil {
			chunk := raw[4*base : 4*(base+inner)]
			for k := 0; k+4 <= len(chunk); k += 4 {
				v := math.Abs(float64(math.Float32frombits(binary.LittleEndian.Uint32(chunk[k:]))))
				if p == 2 {
					v *= v
				}
				bs += v
			}
		} else {
			for _, x := range w[base : base+inner] {
				v := math.Abs(float64(x))
				if p == 2 {
					v *= v
				}
				bs += v
			}
		}
		for i, a := range axes {
			sums[i][coord[a]] += bs
		}
		// The bytes read so far need not stay resident while the rest is
		// read: a 250 MB embedding table stays a few MB.
		if done := 4 * (base + inner); done-released >= releaseEvery && len(mapped) > 0 {
			graph.ReleaseBytes(mapped[released:done])
			released = done
		}
		for j := last; j >= 0; j-- {
			coord[j]++
			if coord[j] < d[j] {
				break
			}
			coord[j] = 0
		}
	}
	out := make(map[int][]float64, len(axes))
	for i, a := range axes {
		out[a] = sums[i]
	}
	return out, nil
}

// releaseEvery is how many bytes of a mapped tensor axisSums reads
// between releases of what it has read.
const releaseEvery = 8 << 20

var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// magCache holds axis sums computed ahead for every scored member.
type magCache struct {
	sums map[string]map[int][]float64
}

func (c *magCache) get(tensor string, axis int) []float64 { return c.sums[tensor][axis] }

// withCache returns m with the axis sums of every scored member of the
// analysis's prunable groups computed in one pass per tensor, tensors on
// several goroutines.
func (m Magnitude) withCache(a *prune.Analysis) (Magnitude, error) {
	axes := map[string][]int{}
	var names []string
	for _, grp := range a.Prunable() {
		for _, mem := range grp.Members {
			if !scored(mem.Kind) {
				continue
			}
			if _, ok := axes[mem.Tensor]; !ok {
				names = append(names, mem.Tensor)
			}
			if !slices.Contains(axes[mem.Tensor], mem.Axis) {
				axes[mem.Tensor] = append(axes[mem.Tensor], mem.Axis)
			}
		}
	}
	res := make([]map[int][]float64, len(names))
	err := parallel(len(names), func(i int) error {
		t, ok := a.Graph().Constant(names[i])
		if !ok {
			return fmt.Errorf("member %q is not a constant", names[i])
		}
		var err error
		res[i], err = axisSums(t, m.P, axes[names[i]])
		return err
	})
	if err != nil {
		return m, err
	}
	c := &magCache{sums: map[string]map[int][]float64{}}
	for i, n := range names {
		c.sums[n] = res[i]
	}
	m.cache = c
	return m, nil
}
