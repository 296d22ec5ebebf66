package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrFormat reports a .npy or .npz file that is malformed or uses a
// feature this package does not read (Fortran order, big-endian data,
// object or structured dtypes).
var ErrFormat = errors.New("bad npy data")

const (
	npyMagic = "\x93NUMPY"
	// maxHeaderLen bounds the header we are willing to parse. NumPy itself
	// refuses headers over 10000 bytes by default (np.load max_header_size).
	maxHeaderLen = 1 << 16
	// npyAlign is the alignment NumPy pads headers to since 1.13.
	npyAlign = 64
)

// npyHeader is the parsed preamble of a .npy file.
type npyHeader struct {
	dtype DType
	shape []int64
	// dataOffset is the number of bytes before the array data.
	dataOffset int64
	// count is the number of elements; nbytes = count * dtype.Size().
	count, nbytes int64
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// readNpyHeader reads and validates the magic, version and header dict.
func readNpyHeader(r io.Reader) (npyHeader, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return npyHeader{}, formatErr("file too short for a .npy header")
	}
	if string(pre[:6]) != npyMagic {
		return npyHeader{}, formatErr("not a .npy file (bad magic)")
	}
	major, minor := pre[6], pre[7]
	var hlen, off int64
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyHeader{}, formatErr("truncated header length")
		}
		hlen, off = int64(binary.LittleEndian.Uint16(b[:])), 10
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyHeader{}, formatErr("truncated header length")
		}
		hlen, off = int64(binary.LittleEndian.Uint32(b[:])), 12
	default:
		return npyHeader{}, formatErr("unsupported .npy version %d.%d", major, minor)
	}
	if hlen > maxHeaderLen {
		return npyHeader{}, formatErr("header of %d bytes is larger than the %d allowed", hlen, maxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return npyHeader{}, formatErr("truncated header (%d bytes declared)", hlen)
	}
	h, err := parseHeaderDict(string(buf))
	if err != nil {
		return npyHeader{}, err
	}
	h.dataOffset = off + hlen
	return h, nil
}

// parseHeaderDict parses the Python dict literal NumPy writes, for example
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
func parseHeaderDict(s string) (npyHeader, error) {
	p := &dictParser{s: s}
	fields, err := p.dict()
	if err != nil {
		return npyHeader{}, err
	}
	var h npyHeader
	descr, ok := fields["descr"].(string)
	if !ok {
		if _, isList := fields["descr"].([]any); isList {
			return npyHeader{}, formatErr("structured dtypes are not supported")
		}
		return npyHeader{}, formatErr("header has no string 'descr'")
	}
	if h.dtype, err = parseDescr(descr); err != nil {
		return npyHeader{}, err
	}
	fortran, ok := fields["fortran_order"].(bool)
	if !ok {
		return npyHeader{}, formatErr("header has no boolean 'fortran_order'")
	}
	if fortran {
		return npyHeader{}, formatErr("Fortran-order arrays are not supported; save with np.ascontiguousarray")
	}
	shape, ok := fields["shape"].([]int64)
	if !ok {
		return npyHeader{}, formatErr("header has no integer tuple 'shape'")
	}
	for k := range fields {
		if k != "descr" && k != "fortran_order" && k != "shape" {
			return npyHeader{}, formatErr("unexpected header key %q", k)
		}
	}
	h.shape = shape
	if h.count, err = NumElements(shape); err != nil {
		return npyHeader{}, formatErr("%v", err)
	}
	if h.count > maxElements/int64(h.dtype.Size()) {
		return npyHeader{}, formatErr("shape %s is too large", FormatShape(shape))
	}
	h.nbytes = h.count * int64(h.dtype.Size())
	return h, nil
}

// parseDescr maps a NumPy type string such as '<f4' to a DType.
func parseDescr(descr string) (DType, error) {
	if len(descr) < 2 {
		return Invalid, formatErr("bad dtype %q", descr)
	}
	order, code := descr[0], descr[1:]
	switch order {
	case '<', '|', '=':
		// '=' is native order; every platform pare runs on is little-endian.
	case '>':
		if code != "i1" && code != "u1" && code != "b1" {
			return Invalid, formatErr("big-endian dtype %q is not supported; convert with arr.astype(arr.dtype.newbyteorder('<'))", descr)
		}
	default:
		return Invalid, formatErr("bad dtype %q", descr)
	}
	switch code {
	case "f2":
		return Float16, nil
	case "f4":
		return Float32, nil
	case "f8":
		return Float64, nil
	case "i1":
		return Int8, nil
	case "u1":
		return Uint8, nil
	case "i2":
		return Int16, nil
	case "u2":
		return Uint16, nil
	case "i4":
		return Int32, nil
	case "u4":
		return Uint32, nil
	case "i8":
		return Int64, nil
	case "u8":
		return Uint64, nil
	case "b1":
		return Bool, nil
	}
	if strings.HasPrefix(code, "O") {
		return Invalid, formatErr("object arrays (dtype %q) are not supported", descr)
	}
	return Invalid, formatErr("dtype %q is not supported", descr)
}

// descrOf is the NumPy type string for dt.
func descrOf(dt DType) (string, error) {
	switch dt {
	case Float16:
		return "<f2", nil
	case Float32:
		return "<f4", nil
	case Float64:
		return "<f8", nil
	case Int8:
		return "|i1", nil
	case Uint8:
		return "|u1", nil
	case Int16:
		return "<i2", nil
	case Uint16:
		return "<u2", nil
	case Int32:
		return "<i4", nil
	case Uint32:
		return "<u4", nil
	case Int64:
		return "<i8", nil
	case Uint64:
		return "<u8", nil
	case Bool:
		return "|b1", nil
	}
	return "", fmt.Errorf("tensor: %v has no .npy dtype; convert it to float32 first", dt)
}

// encodeNpyHeader returns the full preamble (magic to padding) for d, using
// version 1.0 unless the header needs the 4-byte length of version 2.0.
func encodeNpyHeader(dt DType, shape []int64) ([]byte, error) {
	descr, err := descrOf(dt)
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr)
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.FormatInt(d, 10))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	dict := sb.String()
	for _, v := range []struct {
		major byte
		pre   int
		limit int
	}{{1, 10, 1<<16 - 1}, {2, 12, 1<<32 - 1}} {
		total := v.pre + len(dict) + 1
		pad := (npyAlign - total%npyAlign) % npyAlign
		hlen := len(dict) + pad + 1
		if hlen > v.limit {
			continue
		}
		var buf bytes.Buffer
		buf.WriteString(npyMagic)
		buf.Write([]byte{v.major, 0})
		if v.major == 1 {
			buf.Write(binary.LittleEndian.AppendUint16(nil, uint16(hlen)))
		} else {
			buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(hlen)))
		}
		buf.WriteString(dict)
		buf.Write(bytes.Repeat([]byte{' '}, pad))
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("tensor: .npy header too long")
}
