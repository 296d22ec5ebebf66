package grad

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	onnxbuild "github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// TestEinsumMatMulMatchesOnnxruntime: Einsum equations that are batched
// matrix products (attention's, as MaxViT exports them, and the same
// with either operand's or the output's last two axes swapped) match
// onnxruntime, and the gradient of the weight operand matches finite
// differences. Other equations are refused naming the equation.
func TestEinsumMatMulMatchesOnnxruntime(t *testing.T) {
	cases := []struct {
		eq     string
		x, w   []int64 // the input's and the weight's shapes
		refuse bool
	}{
		{eq: "B G H I D, B G H J D -> B G H I J", x: []int64{2, 2, 3, 4, 5}, w: []int64{2, 2, 3, 6, 5}},
		{eq: "B G H I J, B G H J D -> B G H I D", x: []int64{2, 2, 3, 4, 6}, w: []int64{2, 2, 3, 6, 5}},
		{eq: "bki,bjk->bij", x: []int64{2, 5, 4}, w: []int64{2, 3, 5}},
		{eq: "bik,bkj->bji", x: []int64{2, 4, 5}, w: []int64{2, 5, 3}},
		{eq: "ik,kj->ij", x: []int64{2, 5}, w: []int64{5, 3}},
		{eq: "ik,kj->ik", x: []int64{2, 5}, w: []int64{5, 3}, refuse: true},
		{eq: "bij,bjk->bk", x: []int64{2, 4, 5}, w: []int64{2, 5, 3}, refuse: true},
		{eq: "bii,bij->bij", x: []int64{2, 4, 4}, w: []int64{2, 4, 3}, refuse: true},
		{eq: "...ij,...jk->...ik", x: []int64{2, 4, 5}, w: []int64{2, 5, 3}, refuse: true},
	}
	for _, tc := range cases {
		t.Run(tc.eq, func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 10))
			size := func(s []int64) int {
				n := 1
				for _, d := range s {
					n *= int(d)
				}
				return n
			}
			w := make([]float32, size(tc.w))
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			b := onnxbuild.New(13)
			x := b.Input("x", onnx.TensorProto_FLOAT, tc.x...)
			y := b.Node("Einsum", []string{x, b.Init("w", tc.w, w)}, onnxbuild.String("equation", tc.eq))
			dims := make([]int64, len(tc.x))
			for i := range dims {
				dims[i] = -1
			}
			b.Output(y, onnx.TensorProto_FLOAT, dims...)
			m, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(m, int(tc.x[0]))
			if tc.refuse {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "Einsum") {
					t.Fatalf("err = %v, want the equation refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in := make([]float32, size(tc.x))
			for i := range in {
				in[i] = float32(r.NormFloat64())
			}
			outs := builtMatchesOnnxruntime(t, b.Model, m, in, tc.x)
			gradientsMatch(t, m, in, outs)
		})
	}
}
