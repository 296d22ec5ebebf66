package quant

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pare-dev/pare/graph"
)

// rotationPrefix names the rotation matrices quant inserts; FindLayers
// leaves them float.
const rotationPrefix = "pare_rotation"

// maxRotationBlock bounds the online Hadamard block: its cost is one
// b-long dot product per activation element.
const maxRotationBlock = 256

// applyRotation applies the rotation o asks for: online before every
// MatMul layer (hadamard), or fused into the weights where the graph is
// rotation-invariant and online before the other MatMul layers (fused).
func applyRotation(m *graph.Model, o *Options, rep *Report) error {
	switch o.Rotate {
	case RotateHadamard:
		return rotateModel(m, o, rep, nil)
	case RotateFused:
		if _, err := GemmToMatMul(m); err != nil {
			return err
		}
		fused, err := rotateFused(m, o, rep)
		if err != nil {
			return err
		}
		return rotateModel(m, o, rep, fused)
	}
	return nil
}

// rotateModel applies an online random Hadamard rotation before every
// MatMul layer: since x·W = (x·Q)(Qᵀ·W) for orthogonal Q,
//
//	x ─Reshape[−1, K/b, b]─MatMul(M)─Reshape(shape of x)─▶ x·Q ─MatMul(QᵀW)─▶ y
//
// with Q = I ⊗ M block-diagonal and M = D·H_b a random-signed normalised
// Hadamard of the largest power-of-two order b ≤ 256 dividing K. The
// weight is replaced by QᵀW, whose outliers are spread over b inputs, so
// it quantizes with less error. Layers reading the same activation share
// one rotation. Convs and K without an even factor are left alone.
func rotateModel(m *graph.Model, o *Options, rep *Report, skip map[string]bool) error {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5851f42d4c957f2d))
	e := newEditor(m)
	rotated := map[string]string{} // activation → rotated activation
	blocks := map[string]Matrix{}
	mNames := map[int]string{}
	count := 0
	for _, l := range FindLayers(m, o.Exclude) {
		if l.Op() != "MatMul" || skip[l.Weight] {
			continue
		}
		k := l.In()
		b := rotationBlock(k, maxRotationBlock)
		if b < 2 {
			rep.note(o, "layer %s: K=%d has no even factor, not rotated", l.Node.Name(), k)
			continue
		}
		x := l.Input()
		key := fmt.Sprintf("%s/%d", x, b)
		// One matrix per block size, shared by every rotated activation:
		// the b×b floats are stored once.
		mat, ok := blocks[fmt.Sprint(b)]
		if !ok {
			mat = RandomHadamard(b, rng)
			blocks[fmt.Sprint(b)] = mat
			mNames[b] = e.init(graph.FloatTensor(fmt.Sprintf("%s_%d", rotationPrefix, b), []int64{int64(b), int64(b)}, mat.Data))
		}
		if _, ok := rotated[key]; !ok {
			mName := mNames[b]
			flat := e.init(graph.Int64Tensor(rotationPrefix+"_shape_"+sanitize(x), []int64{3}, []int64{-1, int64(k / b), int64(b)}))
			shape, x1, x2, xr := e.out(x+"_shape"), e.out(x+"_blocks"), e.out(x+"_rotated_blocks"), e.out(x+"_rotated")
			e.insertBefore(l.Node,
				e.node("Shape", "", x+"_rotation_Shape", []string{x}, []string{shape}),
				e.node("Reshape", "", x+"_rotation_Reshape", []string{x, flat}, []string{x1}),
				e.node("MatMul", "", x+"_rotation_MatMul", []string{x1, mName}, []string{x2}),
				e.node("Reshape", "", x+"_rotation_Restore", []string{x2, shape}, []string{xr}))
			rotated[key] = xr
		}
		t := m.Graph.Initializer(l.Weight)
		vals, err := graph.Float32s(t)
		if err != nil {
			return fmt.Errorf("quant: rotate: layer %s: %w", l.Node, err)
		}
		w := rotateRows(Matrix{Rows: k, Cols: l.Out(), Data: vals}, mat)
		// A weight shared with another layer is rotated into a copy.
		wName := e.init(graph.FloatTensor(l.Weight+"_rotated", l.Dims, w.Data))
		l.Node.Proto.Input[0] = rotated[key]
		l.Node.Proto.Input[1] = wName
		count++
	}
	if count == 0 {
		if len(skip) == 0 {
			rep.note(o, "rotation: no MatMul layer to rotate")
		}
		return nil
	}
	rep.note(o, "rotation: %d MatMul layers rotated online (random Hadamard, seed %d)", count, o.Seed)
	return e.apply()
}

// sanitize makes a tensor name usable inside another name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}
