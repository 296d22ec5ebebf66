package quant

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/tensor"
)

// rotationTol bounds the relative L2 difference between a rotated float
// model and the original: the rotation adds one float32 product of b ≤
// 256 terms per activation and per weight.
const rotationTol = 1e-4

func TestRotatedFloatModelMatchesOriginal(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		if f.Kind == "cnn" {
			continue // Convs are not rotated
		}
		t.Run(f.Name, func(t *testing.T) {
			m, in := loadFixture(t, f)
			want := runORT(t, m, in)
			rep := &Report{}
			o := &Options{Rotate: RotateHadamard, Seed: 7}
			if err := o.defaults(); err != nil {
				t.Fatal(err)
			}
			if err := rotateModel(m, o, rep, nil); err != nil {
				t.Fatal(err)
			}
			rotations := 0
			for _, n := range m.Graph.Nodes {
				if n.Op() == "MatMul" && len(n.Proto.Input) > 1 && len(n.Proto.Input[1]) > len(rotationPrefix) && n.Proto.Input[1][:len(rotationPrefix)] == rotationPrefix {
					rotations++
				}
			}
			if rotations == 0 {
				t.Fatalf("no rotation inserted (%v)", rep.Notes)
			}
			got := runORT(t, m, in)
			for i := range want {
				if want[i].DType != tensor.Float32 {
					continue
				}
				if e := relL2(float32s(t, got[i]), float32s(t, want[i])); e > rotationTol {
					t.Errorf("output %d: rotated model differs by %.3g (relative L2)", i, e)
				}
			}
			// Quantizing the rotated model still runs.
			if _, err := Quantize(context.Background(), m, Options{Format: FormatNBits, Bits: 4}); err != nil {
				t.Fatal(err)
			}
			runORT(t, m, in)
		})
	}
}
