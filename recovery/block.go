package recovery

import (
	"fmt"
	"math"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// Block-level reconstruction. The last layer of a residual block (a
// ResNet block's second Conv, a transformer block's attention output or
// fc2 projection) writes into a residual Add. Layer-wise reconstruction
// fits that layer to its own dense output, so the error the pruned skip
// path brings into the Add stays. Fitting the layer to
//
//	t = (dense Add output − pruned skip − shift) / scale
//
// instead (per output channel, with scale and shift the per-channel
// affine ops between the layer and the Add: a bias Add, an inference
// BatchNormalization) makes the block's output match the dense block's,
// absorbing the skip path's error as far as the layer's inputs allow.

// blockTarget is the residual Add a layer writes into.
type blockTarget struct {
	add, skip    string    // the Add's output and its other (skip) input
	scale, shift []float64 // per output channel, layer output → Add input
}

// findBlock follows n's output through per-channel affine ops (a bias
// Add, BatchNormalization) to an Add with a computed second input, in
// the pruned graph g; nil when the layer does not end a residual block.
// out is n's output channel count.
func findBlock(g *graph.Graph, n *graph.Node, out int) *blockTarget {
	scale := make([]float64, out)
	shift := make([]float64, out)
	for i := range scale {
		scale[i] = 1
	}
	v := n.Output(0)
	for range 4 {
		cs := g.Consumers(v)
		if len(cs) != 1 || g.Value(v).IsOutput {
			return nil
		}
		c := cs[0]
		switch c.Op() {
		case "BatchNormalization":
			if len(c.Proto.GetOutput()) != 1 {
				return nil
			}
			var p [4][]float64
			for i := range p {
				x, err := g.ConstantFloat64s(c.Input(i + 1))
				if err != nil || len(x) != out {
					return nil
				}
				p[i] = x
			}
			eps := float64(c.FloatAttr("epsilon", 1e-5))
			for i := range out {
				a := p[0][i] / math.Sqrt(p[3][i]+eps)
				scale[i] *= a
				shift[i] = shift[i]*a + p[1][i] - p[2][i]*a
			}
		case "Add":
			other := c.Input(0)
			if other == v {
				other = c.Input(1)
			}
			if other == v {
				return nil
			}
			if _, ok := g.Constant(other); ok {
				b, err := g.ConstantFloat64s(other)
				if err != nil || len(b) != out {
					return nil // only a per-channel bias is an affine step
				}
				for i := range out {
					shift[i] += b[i]
				}
				break
			}
			return &blockTarget{add: c.Output(0), skip: other, scale: scale, shift: shift}
		default:
			return nil
		}
		v = c.Output(0)
	}
	return nil
}

// outputRows turns one batch of a layer's output ([N, C, H, W] for a
// Conv, [..., C] otherwise) into rows of C values in the order
// calib.Layer.Rows gives input rows (batch, then position).
func outputRows(d tensor.Dense, conv bool, c int) ([]float64, error) {
	x, err := d.Float64s()
	if err != nil {
		return nil, err
	}
	if !conv {
		if len(x)%c != 0 {
			return nil, fmt.Errorf("output %v does not end in %d channels", d.Shape, c)
		}
		return x, nil
	}
	if len(d.Shape) != 4 || int(d.Shape[1]) != c {
		return nil, fmt.Errorf("output %v for %d channels", d.Shape, c)
	}
	n, hw := int(d.Shape[0]), int(d.Shape[2]*d.Shape[3])
	rows := make([]float64, n*hw*c)
	for b := range n {
		for ch := range c {
			plane := x[(b*c+ch)*hw : (b*c+ch+1)*hw]
			for p, v := range plane {
				rows[(b*hw+p)*c+ch] = v
			}
		}
	}
	return rows, nil
}

// targetRows is t for one batch: dense Add rows (dense channels, rows
// keeps the pruned ones), pruned skip rows (kept channels).
func (bt *blockTarget) targetRows(dense []float64, denseC int, rows []int, skip []float64) ([]float64, error) {
	k := len(rows)
	m := len(skip) / k
	if len(dense) != m*denseC {
		return nil, fmt.Errorf("block %s: %d dense values for %d rows of %d channels", bt.add, len(dense), m, denseC)
	}
	t := make([]float64, m*k)
	for r := range m {
		for j, dc := range rows {
			s := bt.scale[j]
			if s == 0 {
				s = 1e-12
			}
			t[r*k+j] = (dense[r*denseC+dc] - skip[r*k+j] - bt.shift[j]) / s
		}
	}
	return t, nil
}
