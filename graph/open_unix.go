//go:build unix

package graph

import (
	"fmt"
	"os"
	"syscall"
)

// openNoFollow opens loc under root read-only, refusing a symlink as its
// last element even if one replaced the file after openData's checks.
// O_NONBLOCK: should a FIFO replace the file, opening it must not hang.
// It does not affect regular files.
func openNoFollow(root *os.Root, loc string) (*os.File, error) {
	f, err := root.OpenFile(loc, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("external data %q: %w", loc, err)
	}
	return f, nil
}

// linkCount returns the number of hard links to the open file f.
func linkCount(_ *os.File, fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
