//go:build unix

package graph

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"unsafe"
)

// mappedFile is an external data file and its bytes, mapped read-only
// and private: the file is never written through the map, and tensors
// alias it, so weights are read from disk only when something reads
// them. The map lives as long as the process.
type mappedFile struct {
	file *os.File
	data []byte
}

func mapFile(f *os.File) (*mappedFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return &mappedFile{file: f, data: []byte{}}, nil
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("%w: %d-byte file is too large to map", ErrInvalidModel, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	maps.add(data)
	return &mappedFile{file: f, data: data}, nil
}

// maps records every mapped region, so that Release can tell mapped
// bytes from heap bytes.
var maps mapRegistry

type mapRegistry struct {
	sync.Mutex
	regions [][2]uintptr // [start, end), sorted by start
}

func (r *mapRegistry) add(data []byte) {
	r.Lock()
	defer r.Unlock()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	r.regions = append(r.regions, [2]uintptr{start, start + uintptr(len(data))})
	sort.Slice(r.regions, func(i, j int) bool { return r.regions[i][0] < r.regions[j][0] })
}

// contains reports whether [start, end) lies inside one mapped region.
func (r *mapRegistry) contains(start, end uintptr) bool {
	r.Lock()
	defer r.Unlock()
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i][0] > start }) - 1
	return i >= 0 && end <= r.regions[i][1]
}

// releaseMapped drops the whole pages of b from the process's memory when
// b lies in a mapped data file. The map is read-only, so nothing is
// lost: a later read pages them in again from the file (or the page
// cache). Bytes on the heap are left alone.
func releaseMapped(b []byte) {
	if uintptr(len(b)) < pageSize {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))
	if !maps.contains(start, end) {
		return
	}
	lo := (start+pageSize-1)&^(pageSize-1) - start
	hi := end&^(pageSize-1) - start
	if hi <= lo {
		return
	}
	// Best effort: a failure only leaves the pages resident.
	_ = syscall.Madvise(b[lo:hi], syscall.MADV_DONTNEED)
}

var pageSize = uintptr(os.Getpagesize())

// isMapped reports whether b lies in a mapped data file.
func isMapped(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return maps.contains(start, start+uintptr(len(b)))
}
