package quant

import (
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"
	"github.com/pare-dev/pare/prune"

	"github.com/pare-dev/pare/tensor"
)

// fusedExpected lists fixtures whose residual stream must take a fused
// rotation (pre-norm transformers, LayerNorm as one op or written out).
var fusedExpected = map[string]bool{
	"gpt_nano_op13": true, "gpt_nano_op17": true, "vit_nano_op13": true, "vit_nano_op17": true,
	"char_gpt_op13": true, "char_gpt_op17": true, "fmnist_vit_op13": true, "fmnist_vit_op17": true,
}

// TestFusedRotationKeepsOutputs rotates every transformer fixture with
// the fused rotation alone (no online rotation, no quantization) and
// checks that onnxruntime computes the same outputs.
func TestFusedRotationKeepsOutputs(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		if f.Kind == "cnn" {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			m, in := loadFixture(t, f)
			want := runORT(t, m, in)
			// The channel sets are the pruning analysis' groups, as the
			// commands pass them.
			o := &Options{Rotate: RotateFused, Seed: 3, ChannelSets: prune.ChannelSets}
			if err := o.defaults(); err != nil {
				t.Fatal(err)
			}
			rep := &Report{}
			if _, err := GemmToMatMul(m); err != nil {
				t.Fatal(err)
			}
			matmuls := func() int {
				n := 0
				for _, node := range m.Graph.Nodes {
					if node.Op() == "MatMul" {
						n++
					}
				}
				return n
			}
			before := matmuls()
			fused, err := rotateFused(m, o, rep)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d layers fused; notes:\n%s", len(fused), strings.Join(rep.Notes, "\n"))
			if fusedExpected[f.Name] && len(fused) == 0 {
				t.Fatalf("no fused rotation")
			}
			// Free at run time: the only MatMuls added are the explicit
			// entry rotations, one per entry.
			entries := 0
			for _, node := range m.Graph.Nodes {
				if node.Op() == "MatMul" && strings.HasPrefix(node.Input(1), rotationPrefix+"_entry_") {
					entries++
				}
			}
			if added := matmuls() - before; added != entries {
				t.Errorf("%d MatMuls added, %d of them entry rotations", added, entries)
			}
			got := runORT(t, m, in)
			for i := range want {
				if want[i].DType != tensor.Float32 {
					continue
				}
				e := relL2(float32s(t, got[i]), float32s(t, want[i]))
				t.Logf("output %d: relative L2 %.2e", i, e)
				if e > rotationTol {
					t.Errorf("output %d: relative L2 error %.2e > %v", i, e, rotationTol)
				}
			}
		})
	}
}
