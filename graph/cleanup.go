package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Temporary files being written, so that an interrupted process can
// remove them (see RemoveTemps).
var temps struct {
	sync.Mutex
	names map[string]bool
	// closed is set by RemoveTemps: the process is about to exit, and no
	// new temporary file may appear after the cleanup.
	closed bool
}

// errRemoved is returned by saves started after RemoveTemps.
var errRemoved = errors.New("graph: temporary files were removed (interrupted); not writing")

// createRegistered creates a new file exclusively in dir, named prefix
// followed by a random number, and registers it for RemoveTemps. Creating
// and registering happen under one lock, so that RemoveTemps cannot run
// between them and miss the file.
func createRegistered(dir, prefix string) (*os.File, error) {
	temps.Lock()
	defer temps.Unlock()
	if temps.closed {
		return nil, errRemoved
	}
	for range 1000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if temps.names == nil {
			temps.names = map[string]bool{}
		}
		temps.names[name] = true
		return f, nil
	}
	return nil, fmt.Errorf("graph: no free temporary name in %s", dir)
}

func unregisterTemp(name string) {
	temps.Lock()
	defer temps.Unlock()
	delete(temps.names, name)
}

// RemoveTemps deletes every temporary file a Save in progress has
// created. The CLI calls it when interrupted, before exiting; saves that
// start afterwards fail instead of creating files.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	temps.closed = true
	for name := range temps.names {
		os.Remove(name)
	}
}
