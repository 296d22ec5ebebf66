//go:build unix

package pipeline

import (
	"os"
	"syscall"
)

// tryLock takes an exclusive lock on f without waiting. The lock goes
// with the open file, so it is released when f closes or the process
// ends.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
