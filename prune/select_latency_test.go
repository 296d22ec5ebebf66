package prune_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// weightLatency is a latency model without a runtime: a layer costs its
// weight's element count, the first two layers (the stem and the
// depthwise convolution after it, at full resolution) heavy times more,
// nothing else costs. One rounding step of the stem's narrow group then
// moves the estimate by several percent, as one step of a narrow group
// moved EfficientNet-B0's by a tenth.
type weightLatency struct{ heavy float64 }

func (w weightLatency) Layer(i int, dims []int64) float64 {
	n := 1.0
	for _, d := range dims {
		n *= float64(d)
	}
	if i < 2 {
		n *= w.heavy
	}
	return n
}

func (weightLatency) Rest() float64 { return 0 }

// TestLatencyTargetKeepsRounding: on MobileNetV2 ×0.35 (groups of 8 to
// 336 channels, rounded to 8 or 16), a latency target under the default
// rounding keeps rounded counts at every ratio — a rounded selection
// leaves gaps in the reachable latency, and falling back to exact counts
// there gave models onnxruntime ran slower than dense — and lands within
// the selection's tolerance wherever other groups' steps can fill a gap.
func TestLatencyTargetKeepsRounding(t *testing.T) {
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "mobilenet_v2_w035_op13.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	an.SetLatency(weightLatency{heavy: 300})
	sc, err := importance.New("magnitude", "l2", 0)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := importance.ScoreAll(context.Background(), sc, an)
	if err != nil {
		t.Fatal(err)
	}
	landed := 0
	for _, ratio := range []float64{0.2, 0.3, 0.4, 0.5, 0.6, 0.7} {
		s := prune.Settings{Criterion: "magnitude", Target: "latency", Ratio: ratio, MaxLayerRatio: 0.8,
			RoundTo: prune.DefaultRoundTo, RoundNarrow: prune.DefaultRoundNarrow, RoundSoft: true}
		p, err := an.Select(scores, s)
		if err != nil {
			t.Fatalf("ratio %.1f: %v", ratio, err)
		}
		if p.Settings.RoundTo != prune.DefaultRoundTo {
			t.Errorf("ratio %.1f: plan rounds to %d, want %d", ratio, p.Settings.RoundTo, prune.DefaultRoundTo)
		}
		for _, g := range p.Groups {
			if k := len(g.Kept); !g.Frozen && k != g.Size && k%prune.DefaultRoundNarrow != 0 {
				t.Errorf("ratio %.1f: group %s keeps %d of %d channels", ratio, g.Name, k, g.Size)
			}
		}
		got := 1 - p.After.LatencyUs/p.Before.LatencyUs
		t.Logf("ratio %.1f: estimate removes %.3f", ratio, got)
		if math.Abs(got-ratio) <= 0.02 {
			landed++
		}
	}
	if landed < 5 {
		t.Errorf("%d of 6 ratios landed within 0.02", landed)
	}
}
