package ioslice

import (
	"slices"
	"strings"
	"testing"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// A cache pruned twice keeps pointing at the original's positions, the
// map survives the model's metadata, and data of the original's, the
// pruned model's or any other size is sliced, passed or refused.
func TestRestrictComposesAndSlices(t *testing.T) {
	m := Map{}
	m.Restrict("past_k0", 1, 4, []int64{0, 2, 3}) // first run: heads 0, 2, 3 of 4
	m.Restrict("past_k0", 1, 3, []int64{0, 2})    // second run: 1st and 3rd of those
	if got := m["past_k0"][0]; got.Of != 4 || !slices.Equal(got.Keep, []int64{0, 3}) {
		t.Fatalf("composed %+v, want heads 0 and 3 of 4", got)
	}
	mp := &onnx.ModelProto{}
	if err := m.Write(mp); err != nil {
		t.Fatal(err)
	}
	back, err := FromModel(mp)
	if err != nil || !slices.Equal(back["past_k0"][0].Keep, []int64{0, 3}) {
		t.Fatalf("read back %v, %v", back, err)
	}
	v := make([]float32, 8)
	for i := range v {
		v[i] = float32(i)
	}
	orig, _ := tensor.New([]int64{1, 4, 2}, v)
	got, err := back.Slice("past_k0", orig)
	if err != nil || !slices.Equal(got.Data.([]float32), []float32{0, 1, 6, 7}) {
		t.Fatalf("sliced %v, %v; want heads 0 and 3", got.Data, err)
	}
	if same, err := back.Slice("past_k0", got); err != nil || !slices.Equal(same.Shape, got.Shape) {
		t.Fatalf("data of the pruned size: %v, %v", same.Shape, err)
	}
	odd, _ := tensor.New([]int64{1, 3, 1}, []float32{1, 2, 3})
	if _, err := back.Slice("past_k0", odd); err == nil {
		t.Fatal("3 heads, neither the original's 4 nor the kept 2, were accepted")
	}
	if ch := Changes(back, m); len(ch) != 0 {
		t.Fatalf("no change reported as %v", ch)
	}
	if err := (Map{}).Write(mp); err != nil || len(mp.MetadataProps) != 0 {
		t.Fatalf("an empty map left %v", mp.MetadataProps)
	}
	if _, err := Parse(`{"x":[{"axis":1,"of":2,"keep":[2]}]}`); err == nil {
		t.Fatal("a kept position past the axis parsed")
	}
}

// The report's line says when caches keep different head counts.
func TestSummaryNamesUnevenCounts(t *testing.T) {
	even := Map{}
	even.Restrict("past_k0", 1, 4, []int64{0, 1})
	even.Restrict("past_k1", 1, 4, []int64{2, 3})
	if s := even.Summary(); strings.Contains(s, "--scope local") || !strings.Contains(s, "2 model inputs and outputs") {
		t.Errorf("even: %s", s)
	}
	uneven := Map{}
	uneven.Restrict("past_k0", 1, 4, []int64{0})
	uneven.Restrict("past_k1", 1, 4, []int64{2, 3})
	if s := uneven.Summary(); !strings.Contains(s, "--scope local") {
		t.Errorf("uneven: %s", s)
	}
}
