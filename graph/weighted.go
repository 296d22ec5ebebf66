package graph

// Weighted describes a layer op that multiplies its input by a weight
// operand: which input is the weight and which the bias, and which axes
// of the stored weight run over output and input channels. Calibration,
// quantization, pruning and recovery all ask these questions; the
// answers live here once.
//
// The description is by operator and attributes only: whether the
// weight is a constant (an initializer, a Constant, or the output of a
// DequantizeLinear) is for the caller to check with the graph.
type Weighted struct {
	Node *Node
	// WeightInput and BiasInput are input indices; BiasInput is -1 for
	// ops without a bias operand (MatMul). The bias may still be absent
	// from a node that could take one (Input(BiasInput) == "").
	WeightInput, BiasInput int
	// OutAxis and InAxis are the axes of the stored weight over output
	// and input channels. For MatMulNBits the weight is blocked
	// [N, K/block, blob]: InAxis runs over K blocks.
	OutAxis, InAxis int
	// Transposed: the stored weight is [in, out] (MatMul, Gemm without
	// transB, ConvTranspose), so its [out, in] view is its transpose.
	Transposed bool
	// InputTransposed: the activation is read transposed (Gemm transA),
	// so its rows are not the layer's input rows.
	InputTransposed bool
	// Group is the number of channel groups (Conv, ConvTranspose); 1
	// otherwise.
	Group int64
	// ChannelAxis is the axis of the layer's output over output
	// channels: 1 for convolutions, -1 (last) for matrix products.
	ChannelAxis int
	// Spatial: the op slides its weight over spatial axes (Conv,
	// ConvTranspose), so each input channel occupies a kernel's worth of
	// weight columns.
	Spatial bool
}

// WeightedOf returns the weighted-layer description of n: Conv,
// ConvTranspose, Gemm, MatMul and com.microsoft MatMulNBits.
func WeightedOf(n *Node) (Weighted, bool) {
	w := Weighted{Node: n, WeightInput: 1, BiasInput: 2, Group: 1, ChannelAxis: -1}
	switch n.Domain() {
	case "":
	case msDomain:
		if n.Op() != "MatMulNBits" {
			return Weighted{}, false
		}
		// B [N, K/block, blob]; bias is input 5 ([N]).
		w.OutAxis, w.InAxis, w.BiasInput = 0, 1, 5
		return w, true
	default:
		return Weighted{}, false
	}
	switch n.Op() {
	case "Conv":
		// W [O, I/group, k...].
		w.OutAxis, w.InAxis = 0, 1
		w.Group, w.ChannelAxis, w.Spatial = n.IntAttr("group", 1), 1, true
	case "ConvTranspose":
		// W [I, O/group, k...].
		w.OutAxis, w.InAxis, w.Transposed = 1, 0, true
		w.Group, w.ChannelAxis, w.Spatial = n.IntAttr("group", 1), 1, true
	case "Gemm":
		w.InputTransposed = n.IntAttr("transA", 0) != 0
		// B [K, N], or [N, K] with transB; C is the bias.
		if n.IntAttr("transB", 0) != 0 {
			w.OutAxis, w.InAxis = 0, 1
		} else {
			w.OutAxis, w.InAxis, w.Transposed = 1, 0, true
		}
	case "MatMul":
		// B [K, N] (rank 2); no bias operand.
		w.OutAxis, w.InAxis, w.Transposed, w.BiasInput = 1, 0, true, -1
	default:
		return Weighted{}, false
	}
	return w, true
}

// IsWeighted reports whether n is a weighted layer op (WeightedOf).
func IsWeighted(n *Node) bool {
	_, ok := WeightedOf(n)
	return ok
}

// Weight returns the name of the weight operand.
func (w Weighted) Weight() string { return w.Node.Input(w.WeightInput) }

// Bias returns the name of the bias operand, "" when the node has none
// or the op cannot take one.
func (w Weighted) Bias() string {
	if w.BiasInput < 0 {
		return ""
	}
	return w.Node.Input(w.BiasInput)
}

// HasBiasInput reports whether the op takes a bias operand at all.
func (w Weighted) HasBiasInput() bool { return w.BiasInput >= 0 }
