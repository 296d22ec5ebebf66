package quant

import (
	"fmt"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// applyFused rewrites the weights and nodes of one set with Q = I ⊗ mb.
func applyFused(m *graph.Model, e *editor, s *fusedSet, mb Matrix) error {
	d, b := s.d, mb.Rows
	center := len(s.lns) > 0
	// rowsTimesQ rotates (after centring) every length-d row of v.
	rowsTimesQ := func(v []float32) []float32 {
		out := make([]float32, len(v))
		row := make([]float32, d)
		for r0 := 0; r0 < len(v); r0 += d {
			copy(row, v[r0:r0+d])
			if center {
				mean := 0.0
				for _, x := range row {
					mean += float64(x)
				}
				mean /= float64(d)
				for i := range row {
					row[i] -= float32(mean)
				}
			}
			for k0 := 0; k0 < d; k0 += b {
				for j := range b {
					acc := float32(0)
					for i := range b {
						acc += row[k0+i] * mb.Data[i*b+j]
					}
					out[r0+k0+j] = acc
				}
			}
		}
		return out
	}
	floats := func(name string) (*onnx.TensorProto, []float32, error) {
		t, ok := m.Graph.Constant(name)
		if !ok {
			return nil, nil, fmt.Errorf("quant: fused rotation: %s is not constant", name)
		}
		v, err := graph.Float32s(t)
		return t, v, err
	}
	// Weights of MatMuls, transformed in place of a copy; a MatMul may be
	// both a reader and a writer.
	weights := map[*graph.Node][]float32{}
	var order []*graph.Node // the MatMuls of weights, first seen first: new initializers in a fixed order
	weight := func(n *graph.Node) ([]float32, []int64, error) {
		t, v, err := floats(n.Input(1))
		if err != nil {
			return nil, nil, err
		}
		if w, ok := weights[n]; ok {
			return w, t.Dims, nil
		}
		order = append(order, n)
		return slices.Clone(v), t.Dims, nil
	}
	for _, r := range s.readers {
		w, dims, err := weight(r)
		if err != nil {
			return err
		}
		k, n := int(dims[0]), int(dims[1])
		if ln := s.status[r.Input(0)]; ln != nil {
			info := s.norms[ln]
			// Fold γ into the rows and add βW to the bias.
			var beta []float32
			if info.beta != "" {
				if _, beta, err = floats(info.beta); err != nil {
					return err
				}
			}
			if beta != nil {
				bias := make([]float32, n)
				nonzero := false
				for i := range k {
					for j := range n {
						bias[j] += beta[i] * w[i*n+j]
					}
				}
				for _, x := range bias {
					nonzero = nonzero || x != 0
				}
				if nonzero {
					if err := addBias(m, e, r, bias); err != nil {
						return err
					}
				}
			}
			_, gamma, err := floats(info.gamma)
			if err != nil {
				return err
			}
			for i := range k {
				for j := range n {
					w[i*n+j] *= gamma[i]
				}
			}
		}
		weights[r] = rotateRows(Matrix{Rows: k, Cols: n, Data: w}, mb).Data
	}
	for _, wr := range s.writers {
		w, _, err := weight(wr)
		if err != nil {
			return err
		}
		weights[wr] = rowsTimesQ(w)
	}
	for _, n := range order {
		t := m.Graph.Initializer(n.Input(1))
		n.Proto.Input[1] = e.init(graph.FloatTensor(n.Input(1)+"_rotated", t.Dims, weights[n]))
	}
	for _, g := range s.tables {
		t, v, err := floats(g.Input(0))
		if err != nil {
			return err
		}
		g.Proto.Input[0] = e.init(graph.FloatTensor(g.Input(0)+"_rotated", t.Dims, rowsTimesQ(v)))
	}
	for _, c := range s.consts {
		t, v, err := floats(c.n.Input(c.i))
		if err != nil {
			return err
		}
		c.n.Proto.Input[c.i] = e.init(graph.FloatTensor(sanitize(c.n.Input(c.i))+"_rotated", t.Dims, rowsTimesQ(v)))
	}
	for _, v := range s.entries {
		// x → Reshape[−1, d] → MatMul(C·Q) → Reshape(shape of x).
		full := NewMatrix(d, d)
		for i := range d {
			full.Data[i*d+i] = 1
		}
		mat := rowsTimesQ(full.Data) // rows of I, centred, times Q: C·Q
		mName := e.init(graph.FloatTensor(rotationPrefix+"_entry_"+sanitize(v), []int64{int64(d), int64(d)}, mat))
		flat := e.init(graph.Int64Tensor(rotationPrefix+"_entry_shape_"+sanitize(v), []int64{2}, []int64{-1, int64(d)}))
		shape, x1, x2, xr := e.out(v+"_shape"), e.out(v+"_rows"), e.out(v+"_rotated_rows"), e.out(v+"_rotated")
		nodes := []*onnx.NodeProto{
			e.node("Shape", "", v+"_entry_Shape", []string{v}, []string{shape}),
			e.node("Reshape", "", v+"_entry_Reshape", []string{v, flat}, []string{x1}),
			e.node("MatMul", "", v+"_entry_MatMul", []string{x1, mName}, []string{x2}),
			e.node("Reshape", "", v+"_entry_Restore", []string{x2, shape}, []string{xr}),
		}
		consumers := m.Graph.Consumers(v)
		if len(consumers) == 0 {
			continue
		}
		first := consumers[0]
		for _, c := range consumers {
			if c.Index < first.Index {
				first = c
			}
			for i, in := range c.Proto.Input {
				if in == v {
					c.Proto.Input[i] = xr
				}
			}
		}
		e.insertBefore(first, nodes...)
	}
	for _, ln := range s.lns {
		if err := replaceWithRMS(m, e, s.norms[ln], d); err != nil {
			return err
		}
	}
	return nil
}

// addBias adds bias (length N) to the output of MatMul n: into the
// constant operand of the Add that alone reads it, else with a new Add.
func addBias(m *graph.Model, e *editor, n *graph.Node, bias []float32) error {
	out := n.Output(0)
	if cs := m.Graph.Consumers(out); len(cs) == 1 && cs[0].Op() == "Add" {
		c := cs[0]
		for i := range 2 {
			if c.Input(i) == out {
				continue
			}
			t, ok := m.Graph.Constant(c.Input(i))
			if !ok || len(t.Dims) == 0 || t.Dims[len(t.Dims)-1] != int64(len(bias)) || graph.DataTypeOf(t) != onnx.TensorProto_FLOAT {
				break
			}
			v, err := graph.Float32s(t)
			if err != nil {
				return err
			}
			nv := slices.Clone(v)
			for j := range nv {
				nv[j] += bias[j%len(bias)]
			}
			c.Proto.Input[i] = e.init(graph.FloatTensor(sanitize(c.Input(i))+"_folded", t.Dims, nv))
			return nil
		}
	}
	tmp := e.out(out + "_unbiased")
	bName := e.init(graph.FloatTensor(sanitize(out)+"_folded_bias", []int64{int64(len(bias))}, bias))
	n.Proto.Output[0] = tmp
	e.insertBefore(n, e.node("Add", "", n.Name()+"_folded_bias", []string{tmp, bName}, []string{out}))
	return nil
}
