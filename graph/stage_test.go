package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
)

// A staged model is invisible until Commit; its VerifyPath loads with
// all tensors (external data through the temporary data file); Commit
// gives the files Save writes; Discard leaves nothing behind.
func TestStage(t *testing.T) {
	m, err := graph.Load(filepath.Join("..", "fixtures", "models", "fmnist_opnet_op12.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, external := range []bool{false, true} {
		dir := t.TempDir()
		opts := graph.SaveOptions{ExternalData: external, Threshold: 64}
		ref := filepath.Join(dir, "ref.onnx")
		if err := m.Save(ref, opts); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out.onnx")
		st, err := m.Stage(out, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("external=%v: %s visible before Commit", external, out)
		}
		v, err := graph.Load(st.VerifyPath())
		if err != nil {
			t.Fatalf("external=%v: staged model does not load: %v", external, err)
		}
		a, _ := v.Marshal()
		b, _ := m.Marshal()
		if !bytes.Equal(a, b) {
			t.Fatalf("external=%v: staged model differs from the model", external)
		}
		if err := st.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, suffix := range map[bool][]string{false: {""}, true: {"", ".data"}}[external] {
			got, _ := os.ReadFile(out + suffix)
			want, _ := os.ReadFile(ref + suffix)
			if !external || suffix == ".data" {
				if !bytes.Equal(got, want) {
					t.Fatalf("external=%v: committed %s differs from Save's", external, out+suffix)
				}
			}
		}
		if err := checkOnly(dir, "ref.onnx", "ref.onnx.data", "out.onnx", "out.onnx.data"); err != nil {
			t.Fatalf("external=%v: %v", external, err)
		}
		st, err = m.Stage(filepath.Join(dir, "gone.onnx"), opts)
		if err != nil {
			t.Fatal(err)
		}
		st.Discard()
		if err := checkOnly(dir, "ref.onnx", "ref.onnx.data", "out.onnx", "out.onnx.data"); err != nil {
			t.Fatalf("external=%v: after Discard: %v", external, err)
		}
	}
}

func checkOnly(dir string, allowed ...string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for _, e := range ents {
		if !ok[e.Name()] {
			return &os.PathError{Op: "unexpected file", Path: e.Name(), Err: os.ErrExist}
		}
	}
	return nil
}
