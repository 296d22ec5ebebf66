package ort

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD (not exported by syscall).
const rusageThread = 1

// threadCPU returns the CPU time (user + system) the calling OS thread
// has used.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
