package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

// rawNpy writes a .npy file with the given dtype descriptor and shape
// and zero bytes of data.
func rawNpy(t *testing.T, path, descr string, shape string, nbytes int) {
	t.Helper()
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(append(b, h...), make([]byte, nbytes)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBadCalibrationFileSameEverywhere: a calibration file that is
// missing, of a type no input takes, or without an array for the input
// gives exit 2 and the same message in prune, quant, check and run
// (where the recipe's line comes first).
func TestBadCalibrationFileSameEverywhere(t *testing.T) {
	dir := t.TempDir()
	complexNpy := filepath.Join(dir, "complex.npy")
	rawNpy(t, complexNpy, "<c8", "(2, 1, 28, 28)", 2*28*28*8)
	wrongKey := filepath.Join(dir, "two.npz")
	a, _ := tensor.Zeros(tensor.Float32, []int64{2, 1, 28, 28})
	if err := tensor.WriteNpzFile(wrongKey, map[string]tensor.Dense{"a": a, "b": a}, false); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"missing":    filepath.Join(dir, "missing.npy"),
		"wrong type": complexNpy,
		"wrong key":  wrongKey,
	} {
		t.Run(name, func(t *testing.T) {
			var msgs []string
			for _, args := range [][]string{
				{"prune", fmnistModel, "-o", filepath.Join(dir, "p.onnx"), "--ratio", "0.3", "--criterion", "wanda", "--calib", file},
				{"quant", fmnistModel, "-o", filepath.Join(dir, "q.onnx"), "--calib", file},
				{"check", fmnistModel, fmnistModel, "--inputs", file},
			} {
				out, code := runCLI(t, args...)
				if code != exitUsage {
					t.Fatalf("%s: exit %d, want %d:\n%s", args[0], code, exitUsage, out)
				}
				line := ""
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, file) {
						line = l
						break
					}
				}
				if !strings.Contains(line, "calib: "+file+": ") {
					t.Fatalf("%s: message does not name the file the shared way:\n%s", args[0], out)
				}
				msgs = append(msgs, line)
			}
			if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
				t.Errorf("messages differ:\n%s", strings.Join(msgs, "\n"))
			}
			// run: the same message after the recipe line that names it
			// (a missing file is refused when the recipe is read, the
			// others when the step opens them).
			recipe := writeRecipe(t, "models: ["+fmnistModel+"]\nsteps:\n  - quant: {calib: "+file+"}\n")
			out, code := runCLI(t, "run", recipe, "--out", filepath.Join(dir, "run-"+strings.ReplaceAll(name, " ", "-")))
			want := msgs[1][strings.Index(msgs[1], "calib: "+file):]
			if code != exitUsage || !strings.Contains(out, want) {
				t.Errorf("run: exit %d, want %d with %q:\n%s", code, exitUsage, want, out)
			}
		})
	}
}
