package graph

import (
	"os"
	"sync"
)

// Temporary files being written, so that an interrupted process can
// remove them (see RemoveTemps).
var temps struct {
	sync.Mutex
	names map[string]bool
}

func registerTemp(name string) {
	temps.Lock()
	defer temps.Unlock()
	if temps.names == nil {
		temps.names = map[string]bool{}
	}
	temps.names[name] = true
}

func unregisterTemp(name string) {
	temps.Lock()
	defer temps.Unlock()
	delete(temps.names, name)
}

// RemoveTemps deletes every temporary file a Save in progress has
// created. The CLI calls it when interrupted, before exiting.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	for name := range temps.names {
		os.Remove(name)
	}
}
