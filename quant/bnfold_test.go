package quant

import (
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// bnFoldTol bounds the relative L2 change of folding BatchNormalization:
// one extra float32 rounding per weight and bias.
const bnFoldTol = 1e-5

func TestFoldBatchNormKeepsOutputs(t *testing.T) {
	folded := 0
	for _, f := range loadManifest(t) {
		m, in := loadFixture(t, f)
		want := runORT(t, m, in)
		n, err := FoldBatchNorm(m)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if n == 0 {
			continue
		}
		folded++
		got := runORT(t, m, in)
		for i := range want {
			if want[i].DType != tensor.Float32 {
				continue
			}
			if e := relL2(float32s(t, got[i]), float32s(t, want[i])); e > bnFoldTol {
				t.Errorf("%s: output %d differs by %.3g after folding %d BatchNormalizations", f.Name, i, e, n)
			}
		}
	}
	if folded == 0 {
		t.Fatal("no fixture had a BatchNormalization to fold")
	}
}
