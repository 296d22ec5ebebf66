package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibVersion is the onnxruntime release scripts/fetch-onnxruntime.sh
// fetches and the one pare is tested with.
const LibVersion = "1.30.0"

// minMinor is the oldest onnxruntime 1.x minor release onnxruntime_go
// v1.27 can drive: its C header asks for ORT_API_VERSION 24.
const minMinor = 24

var (
	initOnce   sync.Once
	initErr    error
	loadedPath string
	loadedVer  string
)

// Init finds, loads and initialises the onnxruntime shared library. Only
// the first call in a process does the work; later calls return its
// result. libPath, when not empty, is the only path tried; otherwise
// $ONNXRUNTIME_LIB is, when set; otherwise the places listed by
// Candidates. A later call naming a different library than the one loaded
// fails, since a process can only hold one.
func Init(libPath string) error {
	initOnce.Do(func() { loadedPath, loadedVer, initErr = load(libPath) })
	if initErr != nil {
		return initErr
	}
	if libPath != "" && !samePath(libPath, loadedPath) {
		return fmt.Errorf("ort: %w: onnxruntime is already loaded from %s, cannot also load %s", ErrUnavailable, loadedPath, libPath)
	}
	return nil
}

// Version returns the loaded library's version ("1.30.0"), or "" before a
// successful Init.
func Version() string { return loadedVer }

// LibraryPath returns the path of the loaded library, or "".
func LibraryPath() string { return loadedPath }

// Candidates lists, in order, the paths Init would try for libPath.
func Candidates(libPath string) []string {
	if libPath != "" {
		return []string{libPath}
	}
	if env := os.Getenv("ONNXRUNTIME_LIB"); env != "" {
		return []string{env}
	}
	name := "libonnxruntime.so"
	if runtime.GOOS == "darwin" {
		name = "libonnxruntime.dylib"
	}
	var out []string
	if cache := cacheDir(); cache != "" {
		out = append(out, filepath.Join(cache, "onnxruntime-"+LibVersion, "libonnxruntime.so.1"))
		// Other versions the fetch script was asked for (ORT_VERSION), newest first.
		others, _ := filepath.Glob(filepath.Join(cache, "onnxruntime-1.*", "libonnxruntime.so.1"))
		slices.Sort(others)
		slices.Reverse(others)
		for _, p := range others {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	dirs := []string{"/usr/local/lib", "/usr/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"}
	if runtime.GOOS == "darwin" {
		dirs = []string{"/opt/homebrew/lib", "/usr/local/lib"}
	}
	for _, dir := range dirs {
		out = append(out, filepath.Join(dir, name), filepath.Join(dir, name+".1"))
	}
	return out
}

// cacheDir mirrors scripts/fetch-onnxruntime.sh:
// ${PARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pare}.
func cacheDir() string {
	if d := os.Getenv("PARE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "pare")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "pare")
	}
	return ""
}

// load tries each candidate in turn. Explicit paths (flag or environment)
// are tried even when they do not exist, so the error says why.
func load(libPath string) (path, version string, err error) {
	cands := Candidates(libPath)
	explicit := libPath != "" || os.Getenv("ONNXRUNTIME_LIB") != ""
	var tried, reasons []string
	for _, p := range cands {
		if !explicit {
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				tried = append(tried, p)
				continue
			}
		}
		v, err := loadOne(p)
		if err == nil {
			return p, v, nil
		}
		tried = append(tried, p)
		reasons = append(reasons, oneLine(err.Error()))
	}
	hint := "set --ort-lib or ONNXRUNTIME_LIB, or run scripts/fetch-onnxruntime.sh"
	if explicit {
		return "", "", fmt.Errorf("ort: %w: %s; %s", ErrUnavailable, strings.Join(reasons, "; "), hint)
	}
	if len(reasons) == 0 {
		return "", "", fmt.Errorf("ort: %w: no library found (tried %s); %s", ErrUnavailable, strings.Join(tried, ", "), hint)
	}
	return "", "", fmt.Errorf("ort: %w: %s (tried %s); %s", ErrUnavailable, strings.Join(reasons, "; "), strings.Join(tried, ", "), hint)
}

func loadOne(path string) (string, error) {
	if st, err := os.Stat(path); err != nil {
		return "", err
	} else if st.IsDir() {
		return "", fmt.Errorf("%s is a directory", path)
	}
	ort.SetSharedLibraryPath(path)
	// Fatal only: every error onnxruntime logs also comes back from the
	// call as an error, which pare reports itself; logged too, it printed
	// a second copy on stderr even where pare recovers (a trial run that
	// falls back, a check that names the failing model).
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		msg := err.Error()
		// onnxruntime_go repeats the path around dlerror's own message.
		msg = strings.TrimPrefix(msg, fmt.Sprintf("Platform-specific initialization failed: Error loading ONNX shared library %q: ", path))
		if strings.Contains(msg, "ORT API base: 2") {
			msg = fmt.Sprintf("the library is older than onnxruntime 1.%d", minMinor)
		}
		return "", fmt.Errorf("load %s: %s", path, msg)
	}
	v := ort.GetVersion()
	if err := checkVersion(v); err != nil {
		ort.DestroyEnvironment()
		return "", fmt.Errorf("load %s: %w", path, err)
	}
	return v, nil
}

// checkVersion accepts onnxruntime 1.x from 1.24 on.
func checkVersion(v string) error {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("unrecognised onnxruntime version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("unrecognised onnxruntime version %q", v)
	}
	if major != 1 || minor < minMinor {
		return fmt.Errorf("onnxruntime %s is not supported (need 1.%d or later 1.x)", v, minMinor)
	}
	return nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
