//go:build windows

package graph

import (
	"fmt"
	"os"
	"syscall"
)

// openNoFollow opens loc under root read-only and refuses it when loc
// is now a symlink or no longer the file that was opened: Windows has
// no O_NOFOLLOW, so a symlink swapped in after openData's checks is
// caught by an Lstat of loc after the open. os.Root keeps even a
// followed link inside the model folder.
func openNoFollow(root *os.Root, loc string) (*os.File, error) {
	f, err := root.OpenFile(loc, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("external data %q: %w", loc, err)
	}
	if err := sameAsLink(root, loc, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sameAsLink checks that loc, not followed, is the open file f.
func sameAsLink(root *os.Root, loc string, f *os.File) error {
	lfi, err := root.Lstat(loc)
	if err != nil {
		return fmt.Errorf("external data %q: %w", loc, err)
	}
	if lfi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %q is a symlink", ErrUnsafePath, loc)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("external data %q: %w", loc, err)
	}
	if !os.SameFile(fi, lfi) {
		return fmt.Errorf("%w: %q changed while it was opened", ErrUnsafePath, loc)
	}
	return nil
}

// linkCount returns the number of hard links to the open file f.
func linkCount(f *os.File, _ os.FileInfo) (uint64, bool) {
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &d); err != nil {
		return 0, false
	}
	return uint64(d.NumberOfLinks), true
}
