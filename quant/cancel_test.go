package quant

import (
	"context"
	"errors"
	"testing"

	"github.com/pare-dev/pare/progress/progresstest"
)

// A signal during sequential GPTQ stops it between two layers of a
// pass: cancelled after the second layer's report, no third is
// quantized and the context's error comes back.
func TestSequentialGPTQStopsBetweenLayers(t *testing.T) {
	f := namedFixture(t, "llama_nano_op17")
	m, in := loadFixture(t, f)
	data := Dataset{Inputs: in}
	o := Options{Format: FormatNBits, Bits: 4, Block: 32, Method: MethodGPTQ, Calib: &data, Sequential: true}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel, reported := progresstest.CancelAt("gptq layers", 1)
	defer cancel()
	_, err := quantizeWeights(ctx, m, FindLayers(m, nil), &o, &Report{}, func() (Dataset, error) { return data, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled GPTQ: %v; want context.Canceled", err)
	}
	if len(*reported) != 2 || (*reported)[1] != 1 {
		t.Errorf("layer reports %v: want 0 and 1, then the stop", *reported)
	}
}
