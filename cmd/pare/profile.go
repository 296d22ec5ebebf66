package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole command to the file
// named by PARE_CPUPROFILE, and a heap profile at its end to the file
// named by PARE_MEMPROFILE, when set (for benchmarks: go tool pprof
// pare FILE; -sample_index=alloc_space shows where memory was
// allocated). The returned function stops them.
func startProfile() func() {
	stopCPU := startCPUProfile(os.Getenv("PARE_CPUPROFILE"))
	mem := os.Getenv("PARE_MEMPROFILE")
	if mem != "" {
		runtime.MemProfileRate = 64 << 10
	}
	return func() {
		stopCPU()
		if mem != "" {
			writeHeapProfile(mem)
		}
	}
}

func startCPUProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pare: PARE_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "pare: PARE_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pare: PARE_MEMPROFILE: %v\n", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintf(os.Stderr, "pare: PARE_MEMPROFILE: %v\n", err)
	}
}
