package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// com.microsoft MatMulNBits: Y = A·dequant(B)ᵀ (+ bias) with B the N×K
// weight quantized in blocks of block_size along K:
//
//	B           uint8 [N, blocks, block_size·bits/8]   codes, packed low bits first
//	scales      [N·blocks] or [N, blocks]
//	zero_points uint8 [N·⌈blocks·bits/8⌉] or [N, ⌈blocks·bits/8⌉], packed
//	            like B per row, or float like scales; optional
//	bias        [N]; optional
//
// Output channels (N) are fresh elements: row n of B, scales, zero points
// and bias. Input channels (K) prune by whole blocks: the positions of a
// block share one scale and zero point, so they are coupled into one
// element (an MLP group over a MatMulNBits down projection has one index
// per block; heads whose size is a multiple of the block stay heads).
// Removing a block drops its codes, scale and zero point, and the kept
// blocks keep their exact values. A flattened scale or zero-point vector
// carries both as facets of one axis (paramKey.facet); packed sub-byte
// zero points are repacked per row (zeroPointBlocks). N and K are
// rewritten. g_idx (act-order) freezes the input channels.
//
// Members: the scales carry the weight-out (rows) and weight-in (blocks)
// kinds, so magnitude criteria score blocks by their scales (the largest
// |w| of a block over the code range) and the dead-channel oracle zeroes
// them; B and the zero points are quantization parameters. Costs count
// B as K·N weights and the scales and zero points not at all, as
// graph.Count does; MACs are K·N per output row.

func init() { registerMS(ruleFunc(analyzeMatMulNBits), "MatMulNBits") }

func analyzeMatMulNBits(a *Analysis, n *graph.Node) error {
	x, bq, sc, zp, gidx, bias, y := n.Input(0), n.Input(1), n.Input(2), n.Input(3), n.Input(4), n.Input(5), n.Output(0)
	k, nOut := n.IntAttr("K", 0), n.IntAttr("N", 0)
	bits, block := n.IntAttr("bits", 4), n.IntAttr("block_size", 0)
	xs := a.shape(x)
	if len(xs) >= 1 && nOut > 0 {
		ys := append([]int64{}, xs...)
		ys[len(ys)-1] = nOut
		a.setShape(y, ys)
	}
	bt, okB := a.constant(bq)
	st, okS := a.constant(sc)
	var blocks, zrow int64
	why := ""
	switch {
	case !okB || !okS:
		why = "B or scales is not a constant"
	case k <= 0 || nOut <= 0 || block <= 0 || (bits != 2 && bits != 4 && bits != 8) || block*bits%8 != 0:
		why = fmt.Sprintf("K %d, N %d, bits %d, block_size %d", k, nOut, bits, block)
	case len(xs) < 1 || xs[len(xs)-1] != k:
		why = fmt.Sprintf("input %v does not end in K %d", xs, k)
	}
	if why == "" {
		blocks = (k + block - 1) / block
		zrow = (blocks*bits + 7) / 8
		switch {
		case !sameDims(bt.Dims, []int64{nOut, blocks, block * bits / 8}):
			why = fmt.Sprintf("B dims %v, want [%d %d %d]", bt.Dims, nOut, blocks, block*bits/8)
		case !perRowLayout(st.Dims, nOut, blocks):
			why = fmt.Sprintf("scales dims %v", st.Dims)
		}
	}
	var zt *onnx.TensorProto
	if why == "" && zp != "" {
		var ok bool
		zt, ok = a.constant(zp)
		packed := ok && graph.DataTypeOf(zt) == onnx.TensorProto_UINT8
		switch {
		case !ok:
			why = "zero points are not a constant"
		case packed && !perRowLayout(zt.Dims, nOut, zrow):
			why = fmt.Sprintf("packed zero points dims %v", zt.Dims)
		case !packed && !perRowLayout(zt.Dims, nOut, blocks):
			why = fmt.Sprintf("zero points dims %v", zt.Dims)
		}
	}
	if why != "" {
		a.freezeInputs(n, n.Name()+": MatMulNBits with "+why)
		return nil
	}
	r := len(xs)
	if a.nbits == nil {
		a.nbits = map[string]nbitsTensor{}
	}
	weight := nbitsTensor{weight: true, k: k}
	a.nbits[bq] = weight
	a.nbits[sc] = nbitsTensor{}
	if zp != "" {
		a.nbits[zp] = nbitsTensor{}
	}
	a.addMAC(n, bq, macRows(a.countShape(y)))
	for ax, l := range a.lab(x) {
		if ax != r-1 {
			a.setLab(y, ax, l)
		}
	}
	packedZP := zt != nil && graph.DataTypeOf(zt) == onnx.TensorProto_UINT8

	// Output rows.
	rows := a.newElems(int(nOut), n.Name())
	ok := a.addParam(bq, 0, rows, KindQParam, n) &&
		a.addRowsParam(sc, st.Dims, rows, blocks, KindWeightOut, n)
	if ok && zt != nil {
		w := blocks
		if packedZP {
			w = zrow
		}
		ok = a.addRowsParam(zp, zt.Dims, rows, w, KindQParam, n)
	}
	if ok && bias != "" {
		ok = a.addParam(bias, 0, rows, KindBias, n)
	}
	if ok {
		a.setLab(y, r-1, rows)
		a.edits = append(a.edits, keptAttr{node: n, name: "N", labels: rows, per: 1})
	}

	// Input channels, by block.
	l := a.lab(x)[r-1]
	if l == nil {
		return nil
	}
	if gidx != "" {
		a.freeze(l, n.Name()+": MatMulNBits with g_idx (act-order) input channels")
		return nil
	}
	units := a.newElems(int(blocks), n.Name())
	a.union(l, spread(units, int(block))[:k], n.Name()+": a quantization block's input channels")
	ok = a.addParam(bq, 1, units, KindQParam, n) &&
		a.addBlocksParam(sc, st.Dims, units, nOut, KindWeightIn, n)
	if ok && zt != nil {
		if packedZP && bits < 8 {
			a.edits = append(a.edits, zeroPointBlocks{node: n, blocks: units, bits: bits})
		} else {
			ok = a.addBlocksParam(zp, zt.Dims, units, nOut, KindQParam, n)
		}
	}
	if ok {
		a.edits = append(a.edits, keptAttr{node: n, name: "K", labels: l, per: 1})
		weight.kLabels = l
		a.nbits[bq] = weight
	}
	return nil
}

// nbitsTensor is how a MatMulNBits tensor counts: B as K·N weights
// (rows × the kept input channels), scales and zero points as nothing.
type nbitsTensor struct {
	weight  bool
	k       int64
	kLabels []int32 // input channels, nil when they do not prune
}

// weights returns B's weight count with rows rows left.
func (t nbitsTensor) weights(ap *applier, rows int64) int64 {
	if !t.weight {
		return 0
	}
	if t.kLabels == nil {
		return rows * t.k
	}
	return rows * int64(countTrue(ap.kept(t.kLabels)))
}

// perRowLayout: dims are [rows·width] or [rows, width].
func perRowLayout(dims []int64, rows, width int64) bool {
	return sameDims(dims, []int64{rows * width}) || sameDims(dims, []int64{rows, width})
}

// addRowsParam records a per-row tensor of width entries per row: axis 0
// of the 2-D form, the "rows" facet of the flattened one.
func (a *Analysis) addRowsParam(name string, dims []int64, rows []int32, width int64, kind string, n *graph.Node) bool {
	if len(dims) == 2 {
		return a.addParam(name, 0, rows, kind, n)
	}
	return a.addParamFacet(name, 0, spread(rows, int(width)), kind, n, "rows")
}

// addBlocksParam records the block axis of a per-row, per-block tensor:
// axis 1 of the 2-D form, the "blocks" facet of the flattened one.
func (a *Analysis) addBlocksParam(name string, dims []int64, units []int32, rows int64, kind string, n *graph.Node) bool {
	if len(dims) == 2 {
		return a.addParam(name, 1, units, kind, n)
	}
	l := make([]int32, 0, int(rows)*len(units))
	for range rows {
		l = append(l, units...)
	}
	return a.addParamFacet(name, 0, l, kind, n, "blocks")
}

// zeroPointBlocks drops the zero points of removed blocks from packed
// sub-byte zero points, row by row (rows already sliced), repacking the
// kept ones from the low bits up and padding each row to whole bytes.
type zeroPointBlocks struct {
	node   *graph.Node
	blocks []int32
	bits   int64
}

func (e zeroPointBlocks) apply(ap *applier) error {
	keep := ap.kept(e.blocks)
	kept := countTrue(keep)
	if kept == len(keep) {
		return nil
	}
	name := e.node.Input(3)
	src, ok := ap.a.g.Constant(name)
	if !ok {
		return fmt.Errorf("prune: %w: zero points %q of %s are not a constant", ErrUnsupported, name, e.node.Name())
	}
	raw, err := graph.RawBytes(src)
	if err != nil {
		return err
	}
	bits := int(e.bits)
	zrow := (len(keep)*bits + 7) / 8
	nrow := (kept*bits + 7) / 8
	if zrow == 0 || len(raw)%zrow != 0 {
		return fmt.Errorf("prune: %w: zero points %q of %s: %d bytes, rows of %d", ErrPlanMismatch, name, e.node.Name(), len(raw), zrow)
	}
	rows := len(raw) / zrow
	out := make([]byte, rows*nrow)
	mask := byte(1<<bits - 1)
	for r := range rows {
		j := 0
		for b, k := range keep {
			if !k {
				continue
			}
			code := raw[r*zrow+b*bits/8] >> (b * bits % 8) & mask
			out[r*nrow+j*bits/8] |= code << (j * bits % 8)
			j++
		}
	}
	dims := []int64{int64(rows * nrow)}
	if len(src.Dims) == 2 {
		dims = []int64{int64(rows), int64(nrow)}
	}
	if ap.sharedConst(name, e.node) {
		clone := ap.uniqueName(name + "_" + sanitize(e.node.Name()))
		ap.a.g.Proto.Initializer = append(ap.a.g.Proto.Initializer, graph.NewTensor(clone, onnx.TensorProto_UINT8, dims, out))
		e.node.Proto.Input[3] = clone
		ap.private[clone] = true
		return ap.a.g.Reindex()
	}
	t, err := ap.a.mutableConst(name)
	if err != nil {
		return err
	}
	graph.SetRaw(t, dims, out)
	return nil
}
