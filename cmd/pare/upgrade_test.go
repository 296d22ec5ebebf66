package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
)

func TestUpgradeCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join("..", "..", "fixtures", "models", "fmnist_resnet_op13.onnx")
	out := filepath.Join(dir, "up.onnx")
	stdout, code := runPare(t, "upgrade", in, "-o", out, "--opset", "18", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var res struct {
		From, To int64
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 13 || res.To != 18 || m.OpsetVersion("") != 18 {
		t.Errorf("report %d → %d, file at %d; want 13 → 18", res.From, res.To, m.OpsetVersion(""))
	}

	// Nothing to change: exit 3, nothing written.
	again := filepath.Join(dir, "again.onnx")
	if _, code := runPare(t, "upgrade", out, "-o", again, "--opset", "13"); code != exitUnsupported {
		t.Errorf("upgrade to a lower opset: exit %d, want %d", code, exitUnsupported)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("%s written for a refused upgrade", again)
	}
	if _, code := runPare(t, "upgrade", in, "-o", again, "--opset", "22"); code != exitUsage {
		t.Errorf("--opset 22: exit %d, want %d", code, exitUsage)
	}
}
