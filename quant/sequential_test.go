package quant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// TestSequentialGPTQ checks the sequential mode against plain GPTQ on a
// decoder fixture: the first pass sees the float model in both, so its
// layers quantize identically; later layers see quantized inputs and
// differ; the float weights are back in the model afterwards.
func TestSequentialGPTQ(t *testing.T) {
	f := namedFixture(t, "gpt_nano_op17")
	m, in := loadFixture(t, f)
	data := Dataset{Inputs: in}
	run := func(seq bool) ([]*Layer, []*Quantized, *Report) {
		return gptqRestoring(t, m, data, seq, fmt.Sprintf("sequential=%v", seq))
	}
	layers, plain, _ := run(false)
	_, seq, rep := run(true)
	t.Logf("notes: %q", rep.Notes)
	// The first pass: the layers reading the first layer's input.
	first := 0
	for first < len(layers) && layers[first].Input() == layers[0].Input() {
		first++
	}
	if first < 2 {
		t.Fatalf("expected Q/K/V to share the first pass, got %d layer(s)", first)
	}
	for i := range first {
		if !slices.Equal(plain[i].Q, seq[i].Q) {
			t.Errorf("layer %s (first pass) differs between plain and sequential GPTQ", layers[i].Node.Name())
		}
	}
	differ := 0
	for i := first; i < len(layers); i++ {
		if !slices.Equal(plain[i].Q, seq[i].Q) {
			differ++
		}
	}
	if differ == 0 {
		t.Errorf("no later layer changed: sequential Hessians equal the float model's")
	}
	var seqErr float64
	for _, l := range rep.Layers {
		if l.OutputError == nil {
			t.Fatalf("layer %s: no output error", l.Node)
		}
		seqErr += *l.OutputError
	}
	t.Logf("%d layers, %d in the first pass, %d later layers changed; mean layer output error %.4f", len(layers), first, differ, seqErr/float64(len(rep.Layers)))
}

// TestSequentialSegmentsMatchWholeRuns checks the segment runs of GPTQ
// against running the whole model (partly quantized, for sequential
// GPTQ) for every pass, on decoder fixtures: every layer's codes are the
// same, and the float weights are back after.
func TestSequentialSegmentsMatchWholeRuns(t *testing.T) {
	for _, c := range []struct {
		name string
		seq  bool
	}{{"gpt_nano_op17", true}, {"llama_nano_op17", true}, {"llama_nano_op17", false}} {
		name := c.name
		t.Run(fmt.Sprintf("%s/sequential=%v", name, c.seq), func(t *testing.T) {
			f := namedFixture(t, name)
			m, in := loadFixture(t, f)
			data := Dataset{Inputs: in}
			run := func(segments bool) ([]*Quantized, *Report) {
				old := segmentCapture
				segmentCapture = segments
				defer func() { segmentCapture = old }()
				_, qs, rep := gptqRestoring(t, m, data, c.seq, fmt.Sprintf("segments=%v", segments))
				return qs, rep
			}
			whole, wrep := run(false)
			seg, srep := run(true)
			t.Logf("whole: %q", wrep.Notes)
			t.Logf("segments: %q", srep.Notes)
			if !slices.ContainsFunc(srep.Notes, func(n string) bool { return strings.Contains(n, "segments of") }) {
				t.Fatalf("segments not used: %q", srep.Notes)
			}
			same, maxDiff := 0, 0
			for i := range whole {
				if slices.Equal(whole[i].Q, seg[i].Q) {
					same++
					continue
				}
				diff := 0
				for j := range whole[i].Q {
					if whole[i].Q[j] != seg[i].Q[j] {
						diff++
					}
				}
				maxDiff = max(maxDiff, diff)
			}
			t.Logf("%d of %d layers identical; at most %d codes differ in the others", same, len(whole), maxDiff)
			if same != len(whole) {
				t.Errorf("segment runs changed %d of %d layers", len(whole)-same, len(whole))
			}
		})
	}
}

// gptqRestoring quantizes every layer of m with GPTQ (sequential or not)
// on data and fails the test unless the float weights are back in m
// afterwards; label names the run in the failure.
func gptqRestoring(t *testing.T, m *graph.Model, data Dataset, seq bool, label string) ([]*Layer, []*Quantized, *Report) {
	t.Helper()
	o := Options{Format: FormatNBits, Bits: 4, Block: 32, Method: MethodGPTQ, Calib: &data, Sequential: seq}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	layers := FindLayers(m, nil)
	before := make([][]float32, len(layers))
	for i, l := range layers {
		v, _ := graph.Float32s(m.Graph.Initializer(l.Weight))
		before[i] = slices.Clone(v)
	}
	rep := &Report{}
	qs, err := quantizeWeights(context.Background(), m, layers, &o, rep, func() (Dataset, error) { return data, nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		v, _ := graph.Float32s(m.Graph.Initializer(l.Weight))
		if !slices.Equal(v, before[i]) {
			t.Fatalf("%s: layer %s weight not restored", label, l.Node.Name())
		}
	}
	return layers, qs, rep
}
