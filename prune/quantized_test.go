package prune_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/quant"
)

// TestQuantizedExportsPrune: exporter graphs quantized by pare quant —
// MatMulNBits (4-bit, blocks of 16, zero points) and static int8 QDQ —
// then pruned: --heads 0.25, --mlp 0.25, both and --kv-groups 0.5 (GQA)
// run in onnxruntime with the dense output shapes, fewer parameters, and
// the outputs of the quantized model with the removed heads' and MLP
// channels' weights zeroed (scales for MatMulNBits, codes at their zero
// point for QDQ), within 1e-5.
func TestQuantizedExportsPrune(t *testing.T) {
	base := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8}
	kinds := func(r map[string]float64) prune.Settings { s := base; s.KindRatios = r; return s }
	byName := map[string]fixture{}
	for _, f := range transformerFixtures(t) {
		byName[f.Name] = f
	}
	formats := []quant.Options{
		{Format: quant.FormatNBits, Bits: 4, Block: 16, Asymmetric: true},
		{Format: quant.FormatQDQ, CalibSamples: 8},
	}
	for _, name := range sweeptest.Pick([]string{"llama_nano_op17", "bert_nano_op17", "qwen2_nano_op14"}) {
		f, ok := byName[name]
		if !ok {
			t.Fatalf("fixture %s not in the manifest", name)
		}
		in := inputsOf(t, f)
		for _, qo := range formats {
			m := loadFixture(t, f)
			if _, err := quant.Quantize(context.Background(), m, qo); err != nil {
				t.Fatalf("%s %s: %v", name, qo.Format, err)
			}
			m = reload(t, m)
			settings := map[string]prune.Settings{
				"heads-0.25":     kinds(map[string]float64{prune.KindHeads: 0.25}),
				"mlp-0.25":       kinds(map[string]float64{prune.KindMLP: 0.25}),
				"heads+mlp-0.25": kinds(map[string]float64{prune.KindHeads: 0.25, prune.KindMLP: 0.25}),
			}
			if !strings.HasPrefix(name, "bert") {
				kv := kinds(map[string]float64{prune.KindKVGroups: 0.5})
				kv.KVGroups = true
				settings["kv-groups-0.5"] = kv
			}
			for sn, s := range settings {
				if testing.Short() && sn != "heads+mlp-0.25" && sn != "kv-groups-0.5" {
					continue
				}
				t.Run(name+"/"+qo.Format+"/"+sn, func(t *testing.T) {
					r := prunetest.DeadOracleRuntime(t, m, in, prune.Options{KVGroups: s.KVGroups}, s, ort.Options{})
					if !r.Exact {
						t.Errorf("an inexact group was pruned: %v", r)
					}
					t.Log(r)
				})
			}
		}
	}
}
