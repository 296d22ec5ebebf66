package main

import (
	"runtime"
)

// Limits on sizes that come from the user. Past them pare would run out
// of memory or start more threads than onnxruntime can handle; each is
// refused as a usage error naming the limit (docs/CLI.md).
const (
	// maxSamples bounds --samples and --calib-samples.
	maxSamples = 1 << 20
	// maxBatch bounds a batch size (--batch).
	maxBatch = 1 << 16
	// maxRuns bounds bench's --warmup plus --runs.
	maxRuns = 1_000_000
)

// maxThreads bounds --threads: 64, or the number of CPUs when larger.
func maxThreads() int { return max(64, runtime.NumCPU()) }

// checkThreads validates a --threads value.
func checkThreads(n int) error {
	if n < 1 {
		return usageErrorf("--threads must be at least 1, got %d", n)
	}
	if n > maxThreads() {
		return usageErrorf("--threads %d is over the limit of %d", n, maxThreads())
	}
	return nil
}

// checkBatch validates a --batch value (0 is allowed where it means a
// default).
func checkBatch(b int64) error {
	if b > maxBatch {
		return usageErrorf("--batch %d is over the limit of %d", b, maxBatch)
	}
	return nil
}
