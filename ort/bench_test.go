package ort

import (
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

// BenchmarkRun measures Run on the small MLP, where onnxruntime's own
// work is tiny and the wrapper's overhead (tensor creation, output copy)
// shows; compare with BenchmarkRawRun, which reuses input tensors.
func BenchmarkRun(b *testing.B) {
	s, err := NewSession(orttest.Bytes(b, orttest.MLP()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, rows := range []int{1, 64, 4096} {
		x := inputX(rows)
		feed := map[string]tensor.Dense{"x": x}
		b.Run(fmt.Sprintf("rows%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Run(ctx, feed, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawRun(b *testing.B) {
	s, err := NewSession(orttest.Bytes(b, orttest.MLP()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, rows := range []int{1, 64, 4096} {
		in, err := s.inputValues(map[string]tensor.Dense{"x": inputX(rows)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("rows%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			outs := make([]ort.Value, s.nOut)
			for b.Loop() {
				if err := s.runRaw(ctx, in, outs); err != nil {
					b.Fatal(err)
				}
				destroyAll(outs)
			}
		})
		destroyAll(in)
	}
}
