package ort

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitLoadsLibrary(t *testing.T) {
	if err := Init(""); err != nil {
		t.Fatalf("onnxruntime must be installed for these tests (scripts/fetch-onnxruntime.sh): %v", err)
	}
	if !strings.HasPrefix(Version(), "1.") || LibraryPath() == "" {
		t.Errorf("version %q from %q", Version(), LibraryPath())
	}
	if err := Init(LibraryPath()); err != nil {
		t.Errorf("Init with the loaded path: %v", err)
	}
	err := Init(filepath.Join(t.TempDir(), "other.so"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init with another path: %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"1.30.0": true, "1.24.1": true, "1.99.0": true,
		"1.23.2": false, "2.0.0": false, "0.9": false, "": false, "x.y": false,
	} {
		if err := checkVersion(v); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v", v, err)
		}
	}
}

func TestCandidatesOrder(t *testing.T) {
	t.Setenv("ONNXRUNTIME_LIB", "")
	t.Setenv("PARE_CACHE", "/cache/pare")
	got := Candidates("")
	if got[0] != "/cache/pare/onnxruntime-"+LibVersion+"/libonnxruntime.so.1" {
		t.Errorf("first candidate %q", got[0])
	}
	if !strings.Contains(strings.Join(got, " "), "/usr/lib/libonnxruntime.so") {
		t.Errorf("no /usr/lib candidate in %v", got)
	}
	t.Setenv("PARE_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := Candidates(""); got[0] != "/xdg/pare/onnxruntime-"+LibVersion+"/libonnxruntime.so.1" {
		t.Errorf("XDG candidate %q", got[0])
	}
	t.Setenv("ONNXRUNTIME_LIB", "/env/lib.so")
	if got := Candidates(""); len(got) != 1 || got[0] != "/env/lib.so" {
		t.Errorf("env candidates %v", got)
	}
	if got := Candidates("/flag/lib.so"); len(got) != 1 || got[0] != "/flag/lib.so" {
		t.Errorf("flag candidates %v", got)
	}
}

// TestUnavailable runs a fresh process (this test binary) for each way
// the library can be missing, since a process loads it only once.
func TestUnavailable(t *testing.T) {
	if os.Getenv("PARE_ORT_HELPER") != "" {
		return
	}
	dir := t.TempDir()
	notLib := filepath.Join(dir, "libonnxruntime.so")
	os.WriteFile(notLib, []byte("not a shared library"), 0o644)
	tests := []struct {
		name     string
		env      []string
		wantText []string
	}{
		{"missing env path", []string{"ONNXRUNTIME_LIB=" + filepath.Join(dir, "nope.so")}, []string{"nope.so", "no such file"}},
		{"not a library", []string{"ONNXRUNTIME_LIB=" + notLib}, []string{"load " + notLib}},
		{"nothing found", []string{"ONNXRUNTIME_LIB=", "PARE_CACHE=" + dir, "PARE_ORT_HELPER_PATHS=1"}, []string{"tried " + filepath.Join(dir, "onnxruntime-"+LibVersion, "libonnxruntime.so.1")}},
		{"explicit flag", []string{"PARE_ORT_HELPER_LIB=" + filepath.Join(dir, "flag.so")}, []string{"flag.so"}},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUnavailableHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "PARE_ORT_HELPER=1")
		cmd.Env = append(cmd.Env, tt.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: helper failed: %v\n%s", tt.name, err, out)
			continue
		}
		if strings.Contains(string(out), "exists on this machine") {
			t.Logf("%s: not checkable here, a system-wide library exists", tt.name)
			continue
		}
		t.Logf("%s:\n%s", tt.name, grepLine(string(out), "error:"))
		for _, w := range tt.wantText {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: output does not mention %q:\n%s", tt.name, w, out)
			}
		}
	}
}

// TestUnavailableHelper is the body of TestUnavailable's subprocesses.
func TestUnavailableHelper(t *testing.T) {
	if os.Getenv("PARE_ORT_HELPER") == "" {
		t.Skip("only runs as TestUnavailable's subprocess")
	}
	if os.Getenv("PARE_ORT_HELPER_PATHS") != "" {
		// Only the cache candidate exists in this test's world: a machine
		// with a system-wide library would otherwise find it.
		for _, p := range Candidates("")[1:] {
			if _, err := os.Stat(p); err == nil {
				t.Skipf("%s exists on this machine", p)
			}
		}
	}
	err := Init(os.Getenv("PARE_ORT_HELPER_LIB"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Init = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	if _, err2 := NewSession([]byte{1}, Options{}); !errors.Is(err2, ErrUnavailable) {
		t.Fatalf("NewSession = %v, want ErrUnavailable", err2)
	}
	t.Logf("error: %v", err)
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
