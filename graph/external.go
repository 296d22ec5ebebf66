package graph

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pare-dev/pare/onnx"
)

// externalRef is the parsed external_data of one tensor.
type externalRef struct {
	location       string
	offset, length int64
	hasLength      bool
}

// CheckLocation validates an external data location lexically, before
// anything is opened: it must be a relative, clean, non-empty path that
// stays inside the model's folder. (onnx CVE-2022-25882, CVE-2024-27318
// and CVE-2025-51480 were each a location that escaped.)
func CheckLocation(loc string) error {
	switch {
	case loc == "" || loc == "." || loc == "..":
		return fmt.Errorf("%w: location %q", ErrUnsafePath, loc)
	case strings.ContainsRune(loc, 0):
		return fmt.Errorf("%w: location %q contains NUL", ErrUnsafePath, loc)
	case strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) ||
		(len(loc) > 1 && loc[1] == ':'):
		return fmt.Errorf("%w: location %q is absolute", ErrUnsafePath, loc)
	case strings.Contains(loc, `\`):
		return fmt.Errorf("%w: location %q contains a backslash", ErrUnsafePath, loc)
	}
	for _, part := range strings.Split(loc, "/") {
		if part == ".." || part == "." || part == "" {
			return fmt.Errorf("%w: location %q is not a clean relative path", ErrUnsafePath, loc)
		}
	}
	if path.Clean(loc) != loc {
		return fmt.Errorf("%w: location %q is not a clean relative path", ErrUnsafePath, loc)
	}
	return nil
}

func parseExternal(t *onnx.TensorProto) (externalRef, error) {
	var ref externalRef
	seen := map[string]bool{}
	for _, kv := range t.ExternalData {
		key, val := kv.GetKey(), kv.GetValue()
		if seen[key] {
			return ref, fmt.Errorf("%w: external_data key %q repeated", ErrInvalidModel, key)
		}
		seen[key] = true
		switch key {
		case "location":
			ref.location = val
		case "offset", "length":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return ref, fmt.Errorf("%w: external_data %s %q is not a non-negative integer", ErrInvalidModel, key, val)
			}
			if key == "offset" {
				ref.offset = n
			} else {
				ref.length, ref.hasLength = n, true
			}
		case "checksum":
			// Optional SHA-1 of the file; not needed to read it.
		default:
			return ref, fmt.Errorf("%w: unknown external_data key %q", ErrInvalidModel, key)
		}
	}
	if !seen["location"] {
		return ref, fmt.Errorf("%w: external_data without location", ErrInvalidModel)
	}
	return ref, CheckLocation(ref.location)
}

// resolveExternal points every external tensor's raw_data at its bytes
// in a private memory map of its file (opened only under dir), so that
// weights are paged in only when something reads them, and returns
// tensor name → location.
func resolveExternal(mp *onnx.ModelProto, dir string) (map[string]string, error) {
	var tensors []*onnx.TensorProto
	forEachTensor(mp, func(t *onnx.TensorProto) {
		if IsExternal(t) {
			tensors = append(tensors, t)
		}
	})
	if len(tensors) == 0 {
		return nil, nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer root.Close()
	files := map[string]*mappedFile{}
	defer func() {
		for _, f := range files {
			f.file.Close()
		}
	}()
	locations := make(map[string]string, len(tensors))
	for _, t := range tensors {
		ref, err := parseExternal(t)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.GetName(), err)
		}
		f := files[ref.location]
		if f == nil {
			file, err := openData(root, ref.location)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", t.GetName(), err)
			}
			if f, err = mapFile(file, dir, ref.location); err != nil {
				file.Close()
				return nil, fmt.Errorf("tensor %q: external data %q: %w", t.GetName(), ref.location, err)
			}
			files[ref.location] = f
		}
		raw, err := sliceExternal(f, t, ref)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: external data %q: %w", t.GetName(), ref.location, err)
		}
		t.RawData = raw
		t.ExternalData, t.DataLocation = nil, nil
		locations[t.GetName()] = ref.location
	}
	return locations, nil
}

// openData opens loc under root, refusing symlinks anywhere on the path,
// hard links and anything that is not a regular file.
func openData(root *os.Root, loc string) (*os.File, error) {
	parts := strings.Split(loc, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("external data %q: %w", loc, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %q is a symlink", ErrUnsafePath, p)
		}
		if i == len(parts)-1 && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %q is not a regular file", ErrUnsafePath, p)
		}
	}
	f, err := openNoFollow(root, loc)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("external data %q: %w", loc, err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%w: %q is not a regular file", ErrUnsafePath, loc)
	default:
		if n, ok := linkCount(f, fi); ok && n > 1 {
			err = fmt.Errorf("%w: %q has %d hard links", ErrUnsafePath, loc, n)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sliceExternal returns the mapped bytes t's dims require, after checking
// that the metadata agrees with them and with the file's size.
func sliceExternal(f *mappedFile, t *onnx.TensorProto, ref externalRef) ([]byte, error) {
	n, err := NumElements(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	want, err := ByteSize(DataTypeOf(t), n)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	length := want
	if ref.hasLength {
		if ref.length != want {
			return nil, fmt.Errorf("%w: length %d, but dims %v of %v need %d bytes",
				ErrInvalidModel, ref.length, t.Dims, DataTypeOf(t), want)
		}
		length = ref.length
	}
	size := int64(len(f.data))
	if ref.offset > size || length > size-ref.offset {
		return nil, fmt.Errorf("%w: offset %d + length %d is past the end of the %d-byte file",
			ErrInvalidModel, ref.offset, length, size)
	}
	return f.data[ref.offset : ref.offset+length : ref.offset+length], nil
}
