package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Layer is a weighted layer quant may quantize: calib's [out, in] view
// of a MatMul (weight [K,N] as input 1), Gemm (B as input 1, [K,N] or
// [N,K] with transB) or Conv (weight [O, I/group, k...]), with its
// weight read and written as a float32 Matrix.
type Layer struct{ *calib.Layer }

// Op returns the layer's operator.
func (l *Layer) Op() string { return l.Node.Op() }

// transposed reports whether the stored weight is [in, out] (MatMul, and
// Gemm without transB), so that the [out, in] view is its transpose.
func (l *Layer) transposed() bool { return l.T }

// Matrix returns the weight as [out, in] in float32 (calib.Layer.Matrix
// reads float64 for the pruning side).
func (l *Layer) Matrix(m *graph.Model) (Matrix, error) {
	t := m.Graph.Initializer(l.Weight)
	// Decoded: mapped weights need not stay resident afterwards.
	defer graph.Release(t)
	if l.transposed() && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT && t.RawData != nil {
		// Decode straight into the transposed layout: one pass, no
		// intermediate copy of the weight.
		raw, err := graph.RawBytes(t)
		if err != nil {
			return Matrix{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
		}
		return decodeTransposed(raw, l.In(), l.Out()), nil
	}
	vals, err := graph.Float32s(t)
	if err != nil {
		return Matrix{}, fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	if l.transposed() {
		return Matrix{Rows: l.In(), Cols: l.Out(), Data: vals}.T(), nil
	}
	return Matrix{Rows: l.Out(), Cols: l.In(), Data: vals}, nil
}

// decodeTransposed returns the transpose of the rows×cols little-endian
// float32 matrix raw, as a cols×rows Matrix, in cache-sized tiles.
func decodeTransposed(raw []byte, rows, cols int) Matrix {
	t := NewMatrix(cols, rows)
	const tile = 32
	for r0 := 0; r0 < rows; r0 += tile {
		r1 := min(r0+tile, rows)
		for c0 := 0; c0 < cols; c0 += tile {
			c1 := min(c0+tile, cols)
			for c := c0; c < c1; c++ {
				dst := t.Data[c*rows+r0 : c*rows+r1]
				for i := range dst {
					o := 4 * ((r0+i)*cols + c)
					dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[o : o+4]))
				}
			}
		}
	}
	return t
}

// stored converts an [out, in] matrix back to the weight's stored layout.
func (l *Layer) stored(w Matrix) []float32 {
	if l.transposed() {
		return w.T().Data
	}
	return w.Data
}

// SetMatrix replaces the weight with w ([out, in]), in place, keeping the
// stored layout (float32, as Matrix). Weights shared with other nodes are changed for all.
func (l *Layer) SetMatrix(m *graph.Model, w Matrix) error {
	t := m.Graph.Initializer(l.Weight)
	if err := graph.SetFloat32s(t, l.Dims, l.stored(w)); err != nil {
		return fmt.Errorf("quant: layer %s: %w", l.Node, err)
	}
	return nil
}

// FindLayers returns the layers of m in node order, leaving out those
// whose node or weight name matches exclude (when not nil). Only FLOAT
// weights that are initializers (not graph inputs) qualify, and MatMuls
// only with a 2-D weight.
func FindLayers(m *graph.Model, exclude *regexp.Regexp) []*Layer {
	var out []*Layer
	for _, n := range m.Graph.Nodes {
		l, err := calib.View(m.Graph, n)
		if err != nil || strings.HasPrefix(l.Weight, rotationPrefix) || m.Graph.Initializer(l.Weight) == nil {
			continue
		}
		if exclude != nil && (exclude.MatchString(n.Name()) || exclude.MatchString(l.Weight)) {
			continue
		}
		if ne, err := graph.NumElements(l.Dims); err != nil || ne == 0 {
			continue
		}
		out = append(out, &Layer{l})
	}
	return out
}
