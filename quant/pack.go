package quant

import (
	"fmt"
	"math/bits"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// NBits is a weight in the layout of com.microsoft MatMulNBits: the
// transposed weight, N rows of K values, cut into blocks along K.
//
//	B       uint8 [N, blocks, Block·Bits/8]  codes, K zero-padded per block;
//	                                         4-bit: element 2i low nibble, 2i+1 high
//	Scales  [N·blocks]                       row-major
//	Zeros   uint8 [N·ceil(blocks·Bits/8)]    packed like B, per row; nil when
//	                                         the kernel's default 2^(Bits−1) applies
//
// Codes are unsigned; the value is (code − zero)·scale.
type NBits struct {
	K, N, Bits, Block int
	B                 []byte
	Scales            []float32
	Zeros             []byte
}

// Blocks returns the number of blocks along K.
func (nb *NBits) Blocks() int { return (nb.K + nb.Block - 1) / nb.Block }

// blob returns the bytes per block.
func (nb *NBits) blob() int { return nb.Block * nb.Bits / 8 }

// zeroRow returns the bytes of zero points per row.
func (nb *NBits) zeroRow() int { return (nb.Blocks()*nb.Bits + 7) / 8 }

// ValidNBitsBlock reports whether block is a MatMulNBits block size: a
// power of two of at least 16.
func ValidNBitsBlock(block int) bool { return block >= 16 && bits.OnesCount(uint(block)) == 1 }

// PackNBits lays out q (rows = N output features, cols = K, blocked) for
// MatMulNBits. Symmetric codes are shifted by 2^(Bits−1) into the unsigned
// range, with that zero point.
func PackNBits(q *Quantized) (*NBits, error) {
	if !q.Gran.IsPerBlock() || !ValidNBitsBlock(q.Gran.Block) {
		return nil, fmt.Errorf("quant: matmulnbits: %w: %v (want a power-of-two block ≥ 16)", ErrUnsupported, q.Gran)
	}
	if err := q.Scheme.Validate(); err != nil {
		return nil, fmt.Errorf("quant: matmulnbits: %w", err)
	}
	nb := &NBits{K: q.Cols, N: q.Rows, Bits: q.Scheme.Bits, Block: q.Gran.Block}
	blocks, blob := nb.Blocks(), nb.blob()
	nb.B = make([]byte, nb.N*blocks*blob)
	nb.Scales = make([]float32, nb.N*blocks)
	shift := int32(0)
	if q.Scheme.Symmetric {
		shift = 1 << (nb.Bits - 1)
	}
	needZeros := !(q.Scheme.Symmetric && nb.Bits == 4)
	var zeros []int32
	if needZeros {
		zeros = make([]int32, nb.N*blocks)
	}
	for n := range nb.N {
		for j := range blocks {
			g := q.Grids[q.GridIndex(n, j*nb.Block)]
			nb.Scales[n*blocks+j] = g.Scale
			if needZeros {
				zeros[n*blocks+j] = g.Zero + shift
			}
		}
		// Element index in B: row n, block k/Block, position k%Block,
		// which is k itself within the row.
		row, codes := nb.B[n*blocks*blob:(n+1)*blocks*blob], q.Q[n*nb.K:(n+1)*nb.K]
		k := 0
		if nb.Bits == 4 {
			for ; k+1 < nb.K; k += 2 {
				row[k/2] = byte((codes[k]+shift)&0xF) | byte((codes[k+1]+shift)&0xF)<<4
			}
		}
		for ; k < nb.K; k++ {
			putCode(row, k, nb.Bits, codes[k]+shift)
		}
	}
	if needZeros {
		row := nb.zeroRow()
		nb.Zeros = make([]byte, nb.N*row)
		for n := range nb.N {
			for j := range blocks {
				putCode(nb.Zeros[n*row:], j, nb.Bits, zeros[n*blocks+j])
			}
		}
	}
	return nb, nil
}

// putCode stores unsigned code u as element i of a packed array of
// width-bit codes.
func putCode(packed []byte, i, width int, u int32) {
	if width == 8 {
		packed[i] = byte(u)
		return
	}
	graph.SetNibble(packed, i, int8(u))
}

// code reads element i of a packed array of width-bit unsigned codes.
func code(packed []byte, i, width int) int32 {
	if width == 8 {
		return int32(packed[i])
	}
	return int32(graph.Nibble(packed, i, false))
}

// Dequantize reads the packed bytes back into the [N, K] matrix they
// encode, independently of PackNBits.
func (nb *NBits) Dequantize() Matrix {
	m := NewMatrix(nb.N, nb.K)
	blocks, blob, row := nb.Blocks(), nb.blob(), nb.zeroRow()
	for n := range nb.N {
		for k := range nb.K {
			j := k / nb.Block
			zero := int32(1) << (nb.Bits - 1)
			if nb.Zeros != nil {
				zero = code(nb.Zeros[n*row:], j, nb.Bits)
			}
			c := code(nb.B[n*blocks*blob:], k, nb.Bits)
			m.Data[n*nb.K+k] = float32(c-zero) * nb.Scales[n*blocks+j]
		}
	}
	return m
}

// Int4Tensor returns codes as a packed INT4 (symmetric schemes) or UINT4
// tensor: element 2i in the low nibble.
func Int4Tensor(name string, dims []int64, codes []int32, signed bool) (*onnx.TensorProto, error) {
	dt := onnx.TensorProto_UINT4
	if signed {
		dt = onnx.TensorProto_INT4
	}
	return intTensor(name, dt, dims, codes)
}

// intTensor encodes codes as an integer tensor of type dt.
func intTensor(name string, dt graph.DataType, dims []int64, codes []int32) (*onnx.TensorProto, error) {
	vals := make([]int64, len(codes))
	for i, c := range codes {
		vals[i] = int64(c)
	}
	raw, err := graph.EncodeInt64(dt, vals)
	if err != nil {
		return nil, fmt.Errorf("quant: tensor %q: %w", name, err)
	}
	return graph.NewTensor(name, dt, dims, raw), nil
}
