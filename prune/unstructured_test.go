package prune

import (
	"errors"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
)

func sparseModel(t *testing.T) *graph.Model {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", f32, -1, 8, 4, 4)
	big := make([]float32, 64*8*3*3)
	for i := range big {
		big[i] = float32(i%97) - 48
	}
	c1 := b.Node("Conv", []string{x, b.Init("big", []int64{64, 8, 3, 3}, big)})
	y := b.Node("Conv", []string{c1, initW(b, "small", 4, 64, 1, 1)})
	b.Output(y, f32, -1, 4, 2, 2)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUnstructuredMinimumThreshold(t *testing.T) {
	m := sparseModel(t)
	r, err := Unstructured(m, UnstructuredOptions{Sparsity: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Layers[1].Zeros != 0 {
		t.Errorf("layer under %d weights pruned: %+v", DefaultMinLayerSize, r.Layers[1])
	}
	if r.Sparsity < 0.499 || r.Sparsity > 0.501 {
		t.Errorf("sparsity %.4f, want 0.5", r.Sparsity)
	}
	// 0.85 of everything needs more than 0.8 of the only big layer.
	if _, err := Unstructured(sparseModel(t), UnstructuredOptions{Sparsity: 0.85}); !errors.Is(err, ErrTarget) {
		t.Errorf("unreachable sparsity: %v", err)
	}
}

func TestNMKeepsLargestPerRun(t *testing.T) {
	m := sparseModel(t)
	r, err := NM(m, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := graph.Float32s(m.Graph.Initializer("big"))
	// runs of 4 along the input axis (stride 9 in [64, 8, 3, 3])
	for o := 0; o < 64; o++ {
		for k := 0; k < 9; k++ {
			for s := 0; s < 8; s += 4 {
				nz := 0
				for j := 0; j < 4; j++ {
					if w[(o*8+s+j)*9+k] != 0 {
						nz++
					}
				}
				if nz > 2 {
					t.Fatalf("run at out %d in %d k %d keeps %d", o, s, k, nz)
				}
			}
		}
	}
	if r.Layers[0].Sparsity < 0.5 {
		t.Errorf("2:4 sparsity %.3f", r.Layers[0].Sparsity)
	}
	if _, err := NM(m, 4, 4); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("4:4 accepted: %v", err)
	}
}
