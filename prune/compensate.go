package prune

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// OBS with compensation (Optimal Brain Surgeon, structured as in SPA):
// for a layer y = W x with input Hessian H = (2/n) Σ x xᵀ, removing the
// input columns Q and updating the others optimally costs
//
//	½ Σ_rows w_Q (H⁻¹_QQ)⁻¹ w_Qᵀ
//
// and the update is W ← W − W_{:,Q} (H⁻¹_QQ)⁻¹ H⁻¹_{Q,:}, which zeroes
// the columns Q. This file holds the linear algebra; package importance
// collects H and scores groups with it.

// DefaultDamping is the fraction of the mean diagonal of H added to the
// diagonal before inversion.
const DefaultDamping = 0.01

// SubInverse returns (Hinv_QQ)⁻¹ as a |Q|×|Q| matrix (Hinv n×n,
// row-major).
func SubInverse(hinv []float64, n int, q []int) (*mat.Dense, error) {
	k := len(q)
	s := mat.NewDense(k, k, nil)
	for a, i := range q {
		for b, j := range q {
			s.Set(a, b, hinv[i*n+j])
		}
	}
	var inv mat.Dense
	if err := inv.Inverse(s); err != nil {
		return nil, fmt.Errorf("prune: H⁻¹ restricted to %d columns is singular: %w", k, err)
	}
	return &inv, nil
}

// OBSCost returns ½ Σ_rows w_Q (H⁻¹_QQ)⁻¹ w_Qᵀ for W (rows×cols,
// row-major), Hinv (cols×cols) and the removed columns q.
func OBSCost(w []float64, rows, cols int, hinv []float64, q []int) (float64, error) {
	if len(q) == 0 {
		return 0, nil
	}
	inv, err := SubInverse(hinv, cols, q)
	if err != nil {
		return 0, err
	}
	k := len(q)
	wq := make([]float64, k)
	tmp := make([]float64, k)
	total := 0.0
	vt, vq := mat.NewVecDense(k, tmp), mat.NewVecDense(k, wq)
	for r := range rows {
		for a, j := range q {
			wq[a] = w[r*cols+j]
		}
		vt.MulVec(inv, vq)
		for a := range k {
			total += wq[a] * tmp[a]
		}
	}
	return total / 2, nil
}

// OBSRemove applies W ← W − W_{:,Q} (H⁻¹_QQ)⁻¹ H⁻¹_{Q,:} in place; the
// columns Q become zero (exactly: they are set to zero after the update).
func OBSRemove(w []float64, rows, cols int, hinv []float64, q []int) error {
	if len(q) == 0 {
		return nil
	}
	inv, err := SubInverse(hinv, cols, q)
	if err != nil {
		return err
	}
	k := len(q)
	wq := mat.NewDense(rows, k, nil)
	for r := range rows {
		for a, j := range q {
			wq.Set(r, a, w[r*cols+j])
		}
	}
	hq := mat.NewDense(k, cols, nil)
	for a, i := range q {
		for j := range cols {
			hq.Set(a, j, hinv[i*cols+j])
		}
	}
	var t, d mat.Dense
	t.Mul(wq, inv)
	d.Mul(&t, hq)
	for r := range rows {
		for j := range cols {
			w[r*cols+j] -= d.At(r, j)
		}
		for _, j := range q {
			w[r*cols+j] = 0
		}
	}
	return nil
}

// KeptPositions returns, for axis of tensor (size positions), which
// positions the plan keeps: a position is removed when some member of a
// prunable group maps it to an index the group does not keep.
func KeptPositions(p *Plan, tensor string, axis, size int) []bool {
	out := make([]bool, size)
	for i := range out {
		out[i] = true
	}
	for _, g := range p.Groups {
		if g.Frozen {
			continue
		}
		kept := make([]bool, g.Size)
		for _, i := range g.Kept {
			if i >= 0 && i < g.Size {
				kept[i] = true
			}
		}
		for _, m := range g.Members {
			if m.Tensor != tensor || m.Axis != axis {
				continue
			}
			for pos, idx := range m.Map {
				if pos < size && idx >= 0 && idx < g.Size && !kept[idx] {
					out[pos] = false
				}
			}
		}
	}
	return out
}
