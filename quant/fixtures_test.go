package quant

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

const fixturesDir = "../fixtures"

type fixture struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Opset     int    `json:"opset"`
	RefInputs string `json:"ref_inputs"`
}

func loadManifest(t testing.TB) []fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixturesDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []fixture
	if err := json.Unmarshal(data, &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("fixture manifest is empty")
	}
	return fs
}

func loadFixture(t testing.TB, f fixture) (*graph.Model, map[string]tensor.Dense) {
	t.Helper()
	m, err := graph.Load(filepath.Join(fixturesDir, f.Path))
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensor.ReadNpz(filepath.Join(fixturesDir, f.RefInputs))
	if err != nil {
		t.Fatal(err)
	}
	return m, in
}

// quantFormats are the formats every fixture is written in.
var quantFormats = []Options{
	{Format: FormatQDQ},
	{Format: FormatDynamic},
	{Format: FormatNBits, Bits: 4, Block: 32},
	{Format: FormatNBits, Bits: 8, Block: 64, Asymmetric: true},
	{Format: FormatQDQ4, Block: 32},
}

// fixtureErrBound bounds the relative L2 output error of a quantized
// untrained fixture: random-weight networks have no margin to lose, so
// the bound only catches broken rewrites (wrong layouts give errors near
// or above 1).
const fixtureErrBound = 0.5

func TestEveryFixtureEveryFormatRuns(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		for _, o := range quantFormats {
			name := f.Name + "/" + o.Format
			if o.Format == FormatNBits {
				name += map[int]string{4: "4", 8: "8"}[o.Bits]
			}
			t.Run(name, func(t *testing.T) {
				m, in := loadFixture(t, f)
				want := runORT(t, m, in)
				data := Dataset{Inputs: in}
				o.Calib = &data
				rep, err := Quantize(context.Background(), m, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Layers) == 0 {
					t.Fatal("no layer quantized")
				}
				got := runORT(t, m, in)
				for i := range want {
					if want[i].DType != tensor.Float32 {
						continue
					}
					e := relL2(float32s(t, got[i]), float32s(t, want[i]))
					t.Logf("output %d: relative L2 error %.4f (%d layers)", i, e, len(rep.Layers))
					if e > fixtureErrBound {
						t.Errorf("output %d: relative L2 error %.4f > %v", i, e, fixtureErrBound)
					}
				}
			})
		}
	}
}

// namedFixture is the manifest's fixture called name.
func namedFixture(t testing.TB, name string) fixture {
	t.Helper()
	for _, f := range loadManifest(t) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s in the manifest", name)
	return fixture{}
}
