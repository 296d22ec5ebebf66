package quant

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pare-dev/pare/graph"
)

// A fused rotation (QuaRot's R1) rotates a whole set of values that
// carry the same feature axis, typically a transformer's residual stream,
// by one orthogonal Q, and pays for it entirely in the weights:
//
//   - writers into the set (MatMul weights whose output enters it, Gather
//     embedding tables, constant operands of its Adds and Concats) get
//     their output features multiplied by Q;
//   - readers (MatMuls whose input is in the set) get Qᵀ on their input
//     side, so their outputs are unchanged and their weights, now QᵀW,
//     have their outliers spread;
//   - ops that only move whole rows pass the rotation through: Add of
//     two rotated values, and Identity, Reshape, Expand, (Un)Squeeze,
//     Transpose, Gather, Slice, Concat and Dropout whose input and output
//     both carry the set's channels on their last axis; Shape reads are
//     harmless.
//
// Which values carry the same feature axis is not traced here: the set
// is a channel set of the model (Options.ChannelSets, the pruning
// analysis' groups, whose op rules know which axes each op passes
// channels through). The rotation takes the part of the set around a
// MatMul's input that the ops above connect, and classifies the weights
// around it.
//
// A LayerNorm (a LayerNormalization node, or the same written out node by
// node as opset-13 exports do) is not rotation-invariant: it subtracts
// the mean of the features, and the mean of xQ is not that of x. As QuaRot and
// SliceGPT do, when the set has LayerNorms every writer is first centred
// (its output features made zero-mean), so every value in the set has
// zero mean and the subtraction does nothing; the LayerNorm is then an
// RMSNorm, which commutes with Q (‖xQ‖ = ‖x‖). Its scale γ and shift β
// are folded into the readers of its output (W ← diag(γ)W, bias += βW)
// and its nodes are replaced by x/√(mean(x²)+ε) (Pow, ReduceMean, Add,
// Sqrt, Div, Mul by ones: the pattern onnxruntime fuses into its
// SimplifiedLayerNormalization kernel). This needs every linear reader
// of the set to read through a LayerNorm (pre-norm transformers); a
// LayerNorm output added back into the stream (post-norm) is refused.
//
// A value whose producer cannot take Q (a Conv patch embedding reshaped
// into tokens, a graph input) enters the set through one explicit d×d
// MatMul (with the centring folded in): a one-off cost at the model
// entry, not per layer. Anything else that reads a value of the set
// (graph outputs, non-linear ops) makes the whole set fall back to
// online rotation.

// fusedSet is one set of values rotated together.
type fusedSet struct {
	d      int
	status map[string]*graph.Node // value → LayerNorm it is the (passed-through) output of, nil for the stream
	order  []string
	lns    []*graph.Node
	norms  map[*graph.Node]*normInfo // by the node that writes the normalised output
	// writers and readers: MatMuls with a constant weight.
	writers, readers []*graph.Node
	tables           []*graph.Node // Gather of a constant table
	consts           []operand     // constant operands in the stream
	entries          []string      // values rotated by an explicit MatMul
	failed           string
}

type operand struct {
	n *graph.Node
	i int
}

type fuser struct {
	m      *graph.Model
	shapes *graph.Shapes
	outs   map[string]bool
	// norms holds the LayerNorms that can become RMSNorms, by the node
	// writing their output; memberOf maps each of their nodes to them.
	norms    map[*graph.Node]*normInfo
	memberOf map[*graph.Node]*normInfo
	// setOf maps a value to the channel set holding its last axis.
	setOf map[string]*channels
}

// rotateFused finds the sets of values that can carry a fused rotation
// and rotates them, one set at a time; it returns the names of the
// weights that absorbed one, for the online rotation to skip.
func rotateFused(m *graph.Model, o *Options, rep *Report) (map[string]bool, error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x2545f4914f6cdd1d))
	claimed := map[string]bool{}
	fused := map[string]bool{}
	sets, lns, entries := 0, 0, 0
	refused := map[string][]string{} // reason → layers
	var reasons []string
	channelSets, err := o.ChannelSets(m)
	if err != nil {
		rep.note(o, "fused rotation: no channel sets (%v): online rotation only", err)
		return fused, nil
	}
	for {
		shapes, err := graph.InferShapes(m)
		if err != nil {
			return nil, fmt.Errorf("quant: fused rotation: %w", err)
		}
		f := &fuser{m: m, shapes: shapes, outs: map[string]bool{}}
		for _, out := range m.Graph.Outputs {
			f.outs[out.Name] = true
		}
		f.findNorms()
		f.index(channelSets)
		var s *fusedSet
		for _, l := range FindLayers(m, o.Exclude) {
			if l.Op() != "MatMul" || claimed[l.Input()] || fused[l.Weight] {
				continue
			}
			var c *fusedSet
			if cs := f.setOf[l.Input()]; cs != nil {
				c = f.grow(l.Input(), cs)
			} else if _, _, ok := f.lastDim(l.Input()); !ok {
				c = &fusedSet{failed: l.Input() + ": last axis not of static size"}
			} else {
				c = &fusedSet{failed: "no channel set (pruning group) holds the last axis of " + l.Input()}
			}
			claimed[l.Input()] = true
			for _, v := range c.order {
				claimed[v] = true
			}
			if c.failed == "" && rotationBlock(c.d, maxRotationBlock) < 2 {
				c.failed = fmt.Sprintf("K=%d has no even factor", c.d)
			}
			if c.failed != "" {
				why := c.failed
				if refused[why] == nil {
					reasons = append(reasons, why)
				}
				refused[why] = append(refused[why], l.Node.Name())
				continue
			}
			s = c
			break
		}
		if s == nil {
			break
		}
		e := newEditor(m)
		if err := applyFused(m, e, s, RandomHadamard(rotationBlock(s.d, maxRotationBlock), rng)); err != nil {
			return nil, err
		}
		for _, r := range s.readers {
			fused[r.Input(1)] = true // the rotated weight, named afresh
		}
		sets++
		lns += len(s.lns)
		entries += len(s.entries)
		if err := e.apply(); err != nil {
			return nil, err
		}
	}
	for _, why := range reasons {
		rep.note(o, "fused rotation: not at the input of %s: %s", strings.Join(refused[why], ", "), why)
	}
	if sets > 0 {
		rep.note(o, "rotation: %d MatMul layers read a fused rotation (%d rotated sets, %d LayerNorms turned into RMSNorm, %d explicit entry rotations)", len(fused), sets, lns, entries)
	}
	return fused, nil
}
