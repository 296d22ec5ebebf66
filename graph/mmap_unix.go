//go:build unix

package graph

import (
	"fmt"
	"os"
	"path/filepath"
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

func mapFile(f *os.File, dir, location string) (*mappedFile, error) {
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
	maps.add(data, dir, location)
	return &mappedFile{file: f, data: data}, nil
}

// maps records every mapped region, so that Release can tell mapped
// bytes from heap bytes.
var maps mapRegistry

type mapRegistry struct {
	sync.Mutex
	regions []mapRegion // sorted by start
}

// mapRegion is one mapped file: its addresses [start, end), the folder
// it was resolved under and its location there.
type mapRegion struct {
	start, end    uintptr
	dir, location string
}

func (r *mapRegistry) add(data []byte, dir, location string) {
	r.Lock()
	defer r.Unlock()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	r.regions = append(r.regions, mapRegion{start, start + uintptr(len(data)), dir, location})
	sort.Slice(r.regions, func(i, j int) bool { return r.regions[i].start < r.regions[j].start })
}

// find returns the region [start, end) lies in.
func (r *mapRegistry) find(start, end uintptr) (mapRegion, bool) {
	r.Lock()
	defer r.Unlock()
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].start > start }) - 1
	if i >= 0 && end <= r.regions[i].end {
		return r.regions[i], true
	}
	return mapRegion{}, false
}

func (r *mapRegistry) contains(start, end uintptr) bool {
	_, ok := r.find(start, end)
	return ok
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
	dropPages(b[lo:hi])
}

var pageSize = uintptr(os.Getpagesize())

// mappedAt reports where b lies when it lies in a mapped data file: the
// folder the file was resolved under, its location there and b's
// offset in it.
func mappedAt(b []byte) (dir, location string, offset int64, ok bool) {
	if len(b) == 0 {
		return "", "", 0, false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	r, ok := maps.find(start, start+uintptr(len(b)))
	if !ok {
		return "", "", 0, false
	}
	return r.dir, r.location, int64(start - r.start), true
}

// mapModelFile maps a model file read-only and records it under its
// folder and base name, so that the initializers that alias it can be
// released and passed to a runtime by reference, like external data.
// ok is false when the file cannot be mapped; Load then reads it.
func mapModelFile(f *os.File, path string) ([]byte, bool) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || fi.Size() != int64(int(fi.Size())) {
		return nil, false
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false
	}
	maps.add(data, filepath.Dir(path), filepath.Base(path))
	return data, true
}

// canMap: data files are memory-mapped here (SpillHeap frees heap bytes).
const canMap = true
