package calib

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// A 2×2 kernel over one 3×3 channel, stride 1, pads (1,0,0,0) on top:
// output 3×2 positions; each patch is the 2×2 window, zeros above.
func TestConvRowsUnfold(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 1, 3, 3)
	y := b.Node("Conv", []string{x, b.Init("w", []int64{1, 1, 2, 2}, []float32{1, 2, 3, 4})}, build.Ints("pads", 1, 0, 0, 0))
	b.Output(y, onnx.TensorProto_FLOAT, 1, 1, 3, 2)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLayer(m.Graph, m.Graph.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.In() != 4 || l.Out() != 1 || l.Inner != 4 {
		t.Fatalf("view %d×%d inner %d", l.Out(), l.In(), l.Inner)
	}
	in, _ := tensor.New([]int64{1, 1, 3, 3}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9})
	rows, err := l.Rows(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{
		0, 0, 1, 2, 0, 0, 2, 3, // first output row: the pad row above
		1, 2, 4, 5, 2, 3, 5, 6,
		4, 5, 7, 8, 5, 6, 8, 9,
	}
	if len(rows) != len(want) {
		t.Fatalf("%d values, want %d", len(rows), len(want))
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Fatalf("rows %v, want %v", rows, want)
		}
	}
	if c := l.Columns([]int{0}); len(c) != 4 || c[3] != 3 {
		t.Errorf("columns of channel 0: %v", c)
	}
	// RowsInto gives the same rows in the storage handed to it, once it
	// is large enough, over whatever it held before.
	buf := make([]float64, 100)
	for i := range buf {
		buf[i] = -1
	}
	again, err := l.RowsInto(buf, in)
	if err != nil {
		t.Fatal(err)
	}
	if &again[0] != &buf[0] || !slices.Equal(again, rows) {
		t.Errorf("RowsInto a buffer of 100: %v (reused: %v), want %v", again, &again[0] == &buf[0], rows)
	}
	if small, err := l.RowsInto(make([]float64, 0, 3), in); err != nil || !slices.Equal(small, rows) {
		t.Errorf("RowsInto a buffer of 3: %v, %v", small, err)
	}
}

// Gemm without transB stores [in, out]: the [out, in] view transposes, and
// SetMatrix writes back the stored layout.
func TestGemmMatrixRoundTrip(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 2)
	y := b.Node("Gemm", []string{x, b.Init("w", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})})
	b.Output(y, onnx.TensorProto_FLOAT, -1, 3)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLayer(m.Graph, m.Graph.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Matrix(m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 4, 2, 5, 3, 6}
	for i := range want {
		if w[i] != want[i] {
			t.Fatalf("[out, in] %v, want %v", w, want)
		}
	}
	w[0] = 10
	if err := l.SetMatrix(m.Graph, w); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Matrix(m.Graph)
	if got[0] != 10 || got[1] != 4 || l.InAxis() != 0 {
		t.Errorf("after SetMatrix %v (in axis %d)", got, l.InAxis())
	}
	// A Gemm's rows are its float32 input widened, in the buffer given.
	in, _ := tensor.New([]int64{2, 2}, []float32{1.5, -2, 3, 4})
	buf := make([]float64, 8)
	rows, err := l.RowsInto(buf, in)
	if err != nil || &rows[0] != &buf[0] || !slices.Equal(rows, []float64{1.5, -2, 3, 4}) {
		t.Errorf("RowsInto: %v (reused: %v), %v", rows, err == nil && &rows[0] == &buf[0], err)
	}
}

// Σ x xᵀ and Σ a bᵀ over two batches equal the sums over all rows.
func TestGramAndCross(t *testing.T) {
	g := NewGram(2)
	g.Add([]float64{1, 2})
	g.Add([]float64{3, 0, -1, 1})
	h := takeHessian(g) // (2/3)·[[11, 1], [1, 5]]
	want := []float64{22.0 / 3, 2.0 / 3, 2.0 / 3, 10.0 / 3}
	for i := range want {
		if d := h[i] - want[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("H %v, want %v", h, want)
		}
	}
	c := NewCross(1, 2)
	if err := c.Add([]float64{2}, []float64{1, 3}); err != nil {
		t.Fatal(err)
	}
	if err := c.Add([]float64{1}, []float64{-1, 1}); err != nil {
		t.Fatal(err)
	}
	if c.C[0] != 1 || c.C[1] != 7 || c.N != 2 {
		t.Errorf("cross %v N %v, want [1 7] 2", c.C, c.N)
	}
	s := NewSquareSums(2)
	s.Add([]float64{3, 1, 4, 0})
	if n := s.Norms(); n[0] != 5 || n[1] != 1 {
		t.Errorf("norms %v, want [5 1]", n)
	}
}

// A grouped Conv (two groups of one channel, 2×2 kernel, no pads) is a
// View whose patches come per sample and group, each from its own
// channel; the pruning side's NewLayer refuses it.
func TestGroupedConvPatches(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 2, 2, 2)
	y := b.Node("Conv", []string{x, b.Init("w", []int64{2, 1, 2, 2}, make([]float32, 8))}, build.Int("group", 2))
	b.Output(y, onnx.TensorProto_FLOAT, 1, 2, 1, 1)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Graph.Nodes[0]
	if _, err := NewLayer(m.Graph, n); err == nil {
		t.Fatal("NewLayer accepted a grouped Conv")
	}
	l, err := View(m.Graph, n)
	if err != nil {
		t.Fatal(err)
	}
	if l.Groups() != 2 || l.In() != 4 || l.Unfoldable() != nil {
		t.Fatalf("groups %d, in %d, unfoldable %v", l.Groups(), l.In(), l.Unfoldable())
	}
	var got [][]float64
	err = l.Patches([]int64{1, 2, 2, 2}, []float64{1, 2, 3, 4, 5, 6, 7, 8}, func(b, g int, rows []float64) {
		got = append(got, append([]float64{float64(b), float64(g)}, rows...))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{0, 0, 1, 2, 3, 4}, {0, 1, 5, 6, 7, 8}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	}
	if err := l.Patches([]int64{1, 1, 2, 2}, make([]float64, 4), func(int, int, []float64) {}); err == nil {
		t.Fatal("Patches accepted one channel for two groups")
	}
}
