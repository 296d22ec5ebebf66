package latency

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pare-dev/pare/ort"
)

// cache holds measured latencies (µs) by key, in one JSON file per
// machine: the CPU model, the architecture, the onnxruntime version, the
// thread count and the measure name it, since a measurement holds for
// those only.
type cache struct {
	path string
	us   map[string]float64
	new  map[string]float64
}

// DefaultCacheDir is <user cache dir>/pare/latency.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("latency: no cache directory: %w", err)
	}
	return filepath.Join(d, "pare", "latency"), nil
}

// measure names how a latency is measured; a change of measure gives a
// new cache file. (The first cache, unnamed here, held medians of 10
// runs' thread CPU time.)
const measure = "least thread CPU time of the runs"

// machineID names the measuring setup.
func machineID() string {
	return fmt.Sprintf("%s|%s|onnxruntime %s|threads 1|%s", cpuModel(), runtime.GOARCH, ort.Version(), measure)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown cpu"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown cpu"
}

func openCache(dir string) (*cache, error) {
	sum := sha256.Sum256([]byte(machineID()))
	c := &cache{path: filepath.Join(dir, hex.EncodeToString(sum[:8])+".json"), us: map[string]float64{}, new: map[string]float64{}}
	if err := c.read(c.us); err != nil {
		return nil, err
	}
	return c, nil
}

type cacheFile struct {
	Machine string             `json:"machine"`
	Us      map[string]float64 `json:"us"`
}

func (c *cache) read(into map[string]float64) error {
	b, err := os.ReadFile(c.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("latency: cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil {
		// A damaged cache is measured again, not trusted.
		return nil
	}
	for k, v := range f.Us {
		into[k] = v
	}
	return nil
}

func (c *cache) get(key string) (float64, bool) {
	v, ok := c.us[key]
	return v, ok
}

func (c *cache) put(key string, us float64) {
	c.us[key] = us
	c.new[key] = us
}

// save merges the new measurements into the file (another run may have
// added some meanwhile) and replaces it atomically.
func (c *cache) save() error {
	if len(c.new) == 0 {
		return nil
	}
	all := map[string]float64{}
	if err := c.read(all); err != nil {
		return err
	}
	for k, v := range c.new {
		all[k] = v
	}
	b, err := json.MarshalIndent(cacheFile{Machine: machineID(), Us: all}, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("latency: cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".latency-*.json")
	if err != nil {
		return fmt.Errorf("latency: cache: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("latency: cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("latency: cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("latency: cache: %w", err)
	}
	c.new = map[string]float64{}
	return nil
}
