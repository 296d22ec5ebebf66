package graph_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
)

// A clone shares its tensors' bytes with the original (no heap copy of
// mapped external data), equals it as a protobuf, and is changed
// without changing the original.
func TestCloneSharesBytesNotTensors(t *testing.T) {
	_, ext := externalOpNet(t)
	c, err := graph.Clone(ext)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(c.Proto, ext.Proto) {
		t.Fatal("the clone differs from the model")
	}
	before, err := proto.MarshalOptions{Deterministic: true}.Marshal(ext.Proto)
	if err != nil {
		t.Fatal(err)
	}
	shared, edited := 0, ""
	for i, ct := range c.Proto.Graph.Initializer {
		ot := ext.Proto.Graph.Initializer[i]
		if ct == ot {
			t.Fatalf("tensor %q is the same message in both", ct.GetName())
		}
		if len(ct.RawData) > 0 && &ct.RawData[0] == &ot.RawData[0] {
			shared++
			if edited == "" && ext.External[ot.GetName()] != "" {
				edited = ot.GetName()
			}
		}
	}
	if shared == 0 || edited == "" {
		t.Fatalf("%d tensors share bytes, none of them external", shared)
	}
	// Changing the clone's tensor leaves the original's bytes alone.
	ct, _ := c.Graph.Constant(edited)
	vals, err := graph.Float32s(ct)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		vals[i] += 1
	}
	if err := graph.SetFloat32s(ct, ct.Dims, vals); err != nil {
		t.Fatal(err)
	}
	after, err := proto.MarshalOptions{Deterministic: true}.Marshal(ext.Proto)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("changing the clone changed the model")
	}
	if proto.Equal(c.Proto, ext.Proto) {
		t.Fatal("the clone's change did not take")
	}
}
