package quant

import (
	"fmt"
	"math"
)

// Matrix is a dense row-major float32 matrix. For weights, rows are output
// channels and columns the reduction axis (GPTQ's W[out, in]).
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// NewMatrix returns a zero matrix.
func NewMatrix(rows, cols int) Matrix {
	return Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// At returns element (r, c).
func (m Matrix) At(r, c int) float32 { return m.Data[r*m.Cols+c] }

// Row returns row r, sharing storage.
func (m Matrix) Row(r int) []float32 { return m.Data[r*m.Cols : (r+1)*m.Cols] }

// T returns the transpose.
func (m Matrix) T() Matrix {
	t := NewMatrix(m.Cols, m.Rows)
	// In tiles, so that both sides stay in cache.
	const tile = 32
	rows, cols := m.Rows, m.Cols
	for r0 := 0; r0 < rows; r0 += tile {
		r1 := min(r0+tile, rows)
		for c0 := 0; c0 < cols; c0 += tile {
			c1 := min(c0+tile, cols)
			for c := c0; c < c1; c++ {
				dst := t.Data[c*rows+r0 : c*rows+r1]
				for i := range dst {
					dst[i] = m.Data[(r0+i)*cols+c]
				}
			}
		}
	}
	return t
}

func (m Matrix) validate() error {
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %d×%d matrix with %d values", ErrInvalid, m.Rows, m.Cols, len(m.Data))
	}
	for i, v := range m.Data {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("%w: element %d is %v", ErrInvalid, i, v)
		}
	}
	return nil
}

// Granularity says which elements share a grid: the whole tensor, each
// row (output channel), or consecutive blocks of Block columns in a row
// (the last block of a row may be short).
type Granularity struct {
	kind  granKind
	Block int
}

type granKind int

const (
	perTensor granKind = iota
	perChannel
	perBlock
)

// PerTensor shares one grid over the whole matrix.
func PerTensor() Granularity { return Granularity{kind: perTensor} }

// PerChannel gives each row its own grid.
func PerChannel() Granularity { return Granularity{kind: perChannel} }

// PerBlock gives each run of block columns in a row its own grid.
func PerBlock(block int) Granularity { return Granularity{kind: perBlock, Block: block} }

// IsPerTensor, IsPerChannel and IsPerBlock report the kind.
func (g Granularity) IsPerTensor() bool  { return g.kind == perTensor }
func (g Granularity) IsPerChannel() bool { return g.kind == perChannel }
func (g Granularity) IsPerBlock() bool   { return g.kind == perBlock }

func (g Granularity) String() string {
	switch g.kind {
	case perTensor:
		return "per-tensor"
	case perChannel:
		return "per-channel"
	}
	return fmt.Sprintf("block %d", g.Block)
}

// groupCols returns the number of columns a group spans in a row of cols.
func (g Granularity) groupCols(cols int) int {
	if g.kind == perBlock {
		return g.Block
	}
	return max(cols, 1)
}

// Quantized is a quantized matrix: integer codes and the grids of their
// groups.
type Quantized struct {
	Scheme Scheme
	Gran   Granularity
	Rows   int
	Cols   int
	// Q holds the Rows×Cols codes, row-major.
	Q []int32
	// Grids holds one grid for a per-tensor matrix, one per row for a
	// per-channel one, and Rows×Blocks() row-major for a blocked one.
	Grids []Grid
}

// Blocks returns the number of groups per row (1 unless blocked).
func (q *Quantized) Blocks() int {
	if q.Gran.kind != perBlock {
		return 1
	}
	return (q.Cols + q.Gran.Block - 1) / q.Gran.Block
}

// GridIndex returns the index in Grids of element (r, c).
func (q *Quantized) GridIndex(r, c int) int {
	switch q.Gran.kind {
	case perTensor:
		return 0
	case perChannel:
		return r
	}
	return r*q.Blocks() + c/q.Gran.Block
}

// Dequantize returns the real matrix the codes stand for.
func (q *Quantized) Dequantize() Matrix {
	m := NewMatrix(q.Rows, q.Cols)
	span := q.Gran.groupCols(q.Cols)
	for r := range q.Rows {
		for c0 := 0; c0 < q.Cols; c0 += span {
			g := q.Grids[q.GridIndex(r, c0)]
			lo, hi := r*q.Cols+c0, r*q.Cols+min(c0+span, q.Cols)
			for i, code := range q.Q[lo:hi] {
				m.Data[lo+i] = Dequantize(code, g)
			}
		}
	}
	return m
}

// newQuantized allocates codes and grids for a rows×cols matrix.
func newQuantized(s Scheme, g Granularity, rows, cols int) (*Quantized, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if g.kind == perBlock && (g.Block < 1) {
		return nil, fmt.Errorf("%w: block size %d", ErrUnsupported, g.Block)
	}
	q := &Quantized{Scheme: s, Gran: g, Rows: rows, Cols: cols, Q: make([]int32, rows*cols)}
	switch g.kind {
	case perTensor:
		q.Grids = make([]Grid, 1)
	case perChannel:
		q.Grids = make([]Grid, rows)
	default:
		q.Grids = make([]Grid, rows*q.Blocks())
	}
	return q, nil
}

// RTN quantizes w by rounding to the nearest code, each group's grid
// fitted to the group's range.
func RTN(w Matrix, s Scheme, g Granularity) (*Quantized, error) {
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("quant: rtn: %w", err)
	}
	q, err := newQuantized(s, g, w.Rows, w.Cols)
	if err != nil {
		return nil, fmt.Errorf("quant: rtn: %w", err)
	}
	if g.kind == perTensor {
		grid, err := s.FitValues(w.Data)
		if err != nil {
			return nil, fmt.Errorf("quant: rtn: %w", err)
		}
		q.Grids[0] = grid
	} else {
		span := g.groupCols(w.Cols)
		for r := range w.Rows {
			row := w.Row(r)
			for c0 := 0; c0 < w.Cols; c0 += span {
				// As s.FitValues; the values are known finite.
				lo, hi := float32(0), float32(0)
				for _, v := range row[c0:min(c0+span, w.Cols)] {
					// Plain comparisons: the min/max builtins' NaN and
					// signed-zero handling made this the hot loop.
					if v < lo {
						lo = v
					}
					if v > hi {
						hi = v
					}
				}
				grid, err := s.Fit(lo, hi)
				if err != nil {
					return nil, fmt.Errorf("quant: rtn: %w", err)
				}
				q.Grids[q.GridIndex(r, c0)] = grid
			}
		}
	}
	span := g.groupCols(w.Cols)
	qmin, qmax := s.Range()
	lo64, hi64 := float64(qmin), float64(qmax)
	for r := range w.Rows {
		for c0 := 0; c0 < w.Cols; c0 += span {
			grid := q.Grids[q.GridIndex(r, c0)]
			scale, zero := float64(grid.Scale), float64(grid.Zero)
			lo, hi := r*w.Cols+c0, r*w.Cols+min(c0+span, w.Cols)
			codes := q.Q[lo:hi]
			for i, x := range w.Data[lo:hi] {
				// As Scheme.Quantize, for finite x (validated above).
				v := math.RoundToEven(float64(x)/scale) + zero
				if v < lo64 {
					v = lo64
				} else if v > hi64 {
					v = hi64
				}
				codes[i] = int32(v)
			}
		}
	}
	return q, nil
}
