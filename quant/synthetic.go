package quant

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// SyntheticLen replaces symbolic dims other than the sample axis in
// synthetic calibration data (sequence lengths of token inputs).
const SyntheticLen = 16

// SyntheticDataset draws n samples per input from the declared shapes with
// a seeded generator: standard normal floats; integers uniform in
// [0, rows) when the input indexes a constant table through Gather (token
// ids), else in [0, 2); inputs named like an attention mask are all
// ones. Axis 0 is the sample axis; other symbolic dims (sequence
// lengths) get SyntheticLen. The samples are made batch by batch as they
// are asked for, so their memory does not grow with n; each input has
// its own generator, the first one seeded as a single stream over every
// sample, so a batch holds the same values however the data is split.
func SyntheticDataset(m *graph.Model, n int, seed uint64) (Dataset, error) {
	g := &synthetic{n: n, seed: seed}
	for k, in := range m.Graph.Inputs {
		dims := declaredDims(in.Info)
		if len(dims) == 0 {
			return Dataset{}, fmt.Errorf("quant: synthetic data: %w: input %q has no declared shape", ErrUnsupported, in.Name)
		}
		s := synthInput{name: in.Name, elem: elemType(in.Info), shape: dims[1:], per: 1, hi: 2, index: uint64(k)}
		s.shape = append([]int64(nil), s.shape...)
		for i, v := range s.shape {
			if v < 0 {
				s.shape[i], v = SyntheticLen, SyntheticLen
			}
			s.per *= v
		}
		switch s.elem {
		case onnx.TensorProto_FLOAT, onnx.TensorProto_INT64, onnx.TensorProto_INT32:
		default:
			return Dataset{}, fmt.Errorf("quant: synthetic data: %w: input %q of type %v", ErrUnsupported, in.Name, s.elem)
		}
		s.mask = strings.Contains(strings.ToLower(in.Name), "mask")
		if rows := m.Graph.EmbeddingRows(in.Name); rows > 0 {
			s.hi = rows
		}
		g.inputs = append(g.inputs, s)
	}
	g.reset()
	return Dataset{gen: g}, nil
}

// synthetic makes SyntheticDataset's samples in order; a request for
// earlier samples replays the generators from the seed, one for later
// ones skips ahead.
type synthetic struct {
	mu     sync.Mutex
	n      int
	seed   uint64
	inputs []synthInput
	pos    int // next sample the generators make
}

type synthInput struct {
	name  string
	elem  graph.DataType
	shape []int64 // one sample's dims
	per   int64   // values per sample
	hi    int64   // integers drawn in [0, hi)
	mask  bool
	index uint64
	rng   *rand.Rand
}

func (g *synthetic) reset() {
	for i := range g.inputs {
		s := &g.inputs[i]
		// Input 0 keeps the stream of the seed alone.
		s.rng = rand.New(rand.NewPCG(g.seed+s.index*0x632be59bd9b4e019, 0x9e3779b97f4a7c15))
	}
	g.pos = 0
}

// first returns a generator of g's first n samples.
func (g *synthetic) first(n int) *synthetic {
	f := &synthetic{n: min(g.n, n), seed: g.seed, inputs: append([]synthInput(nil), g.inputs...)}
	f.reset()
	return f
}

func (g *synthetic) batch(i, j int) (map[string]tensor.Dense, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i < 0 || j > g.n || i > j {
		return nil, fmt.Errorf("quant: synthetic data: %w: samples [%d, %d) of %d", ErrInvalid, i, j, g.n)
	}
	if i < g.pos {
		g.reset()
	}
	for g.pos < i {
		g.make(1) // skipped
	}
	return g.make(j - i), nil
}

// make draws the next rows samples of every input.
func (g *synthetic) make(rows int) map[string]tensor.Dense {
	out := make(map[string]tensor.Dense, len(g.inputs))
	for k := range g.inputs {
		s := &g.inputs[k]
		count := int64(rows) * s.per
		shape := append([]int64{int64(rows)}, s.shape...)
		var data any
		switch s.elem {
		case onnx.TensorProto_FLOAT:
			v := make([]float32, count)
			for i := range v {
				v[i] = float32(s.rng.NormFloat64())
			}
			data = v
		default:
			v := make([]int64, count)
			for i := range v {
				if v[i] = s.rng.Int64N(s.hi); s.mask {
					v[i] = 1
				}
			}
			data = v
			if s.elem == onnx.TensorProto_INT32 {
				w := make([]int32, count)
				for i := range v {
					w[i] = int32(v[i])
				}
				data = w
			}
		}
		// Shapes and types were checked when the inputs were read.
		out[s.name], _ = tensor.New(shape, data)
	}
	g.pos += rows
	return out
}
