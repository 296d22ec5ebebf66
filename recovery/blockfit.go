package recovery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/tensor"
)

// Block fitting by gradient. Least squares fits one layer at a time,
// linearly: a layer whose inputs lost channels is refitted to its dense
// outputs, and the layers before it, whose outputs it reads through a
// nonlinearity (a MobileNet block's expansion and depthwise convs, a
// DenseNet layer's bottleneck), keep whatever selection and compensation
// left them. FitBlocks cuts the pruned model into blocks at the values
// through which all data flows (a residual block's output, a DenseNet
// layer's concat, a transformer block's residual stream) and trains every
// weight of one block at a time, by Adam on the calibration data, so
// that the block's last layers reproduce the reference model's outputs
// from the block input the pruned model really computes. Blocks are
// fitted in graph order, each from the outputs of the blocks already
// fitted. Like the least-squares fit, it uses unlabelled calibration
// inputs and a local target; no loss crosses a block's end.

// BlockFitConfig sets FitBlocks.
type BlockFitConfig struct {
	Steps int     // Adam steps per block
	Batch int     // samples per step (0: DefaultBlockFitBatch)
	LR    float64 // Adam's initial rate, cosine to 0 (0: DefaultBlockFitLR)
	// Output is the weight in [0, 1) of the model output's error (the
	// KL for logits, else the relative MSE) in each inner block's loss
	// (blockfit_output.go); 0: each block matches its own output alone.
	Output float64
}

// DefaultBlockFitBatch and DefaultBlockFitLR are the batch and rate of
// a BlockFitConfig that names none.
const (
	DefaultBlockFitBatch = 64
	DefaultBlockFitLR    = 2e-3
)

// fitBlock is a run of nodes between two cuts.
type fitBlock struct {
	input   string        // the one value the block reads from before it (float, or the token ids)
	nodes   []*graph.Node // in graph order
	end     string        // the value after which the block ends (the graph output after the last; "" for several)
	targets []*graph.Node // weighted nodes whose outputs reach the block's end through no other weighted node
	outs    []blockOut    // what the fit matches
}

// blockOut is a value the block fit matches: value in the pruned model,
// ref in the reference, at rows of axis.
type blockOut struct {
	value, ref string
	axis       int
	rows       []int
}

// channelwise ops carry a value's channels position by position: a
// block end reached from its last layers through them alone is matched
// itself, so that the fit also absorbs the error the skip path brings.
var channelwise = map[string]bool{"Add": true, "Sub": true, "Mul": true, "Div": true, "Relu": true, "LeakyRelu": true, "PRelu": true,
	"Clip": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true, "Tanh": true, "Gelu": true, "Erf": true,
	"BatchNormalization": true, "Identity": true, "Dropout": true}

// blockOuts chooses what block b matches: its end value, when the end is
// reached from its last layers through channelwise ops alone and they
// keep the same rows; else each last layer's own output.
func blockOuts(g *graph.Graph, shapes *graph.Shapes, b fitBlock, refLayers map[string]*calib.Layer, rowsOf func(*calib.Layer) []int) []blockOut {
	axisOf := func(n *graph.Node) int {
		if n.Op() == "Conv" || n.Op() == "ConvTranspose" {
			return 1
		}
		if s, ok := shapes.Of(n.Output(0)); ok {
			return len(s.Dims) - 1
		}
		return -1
	}
	var own []blockOut
	for _, t := range b.targets {
		l := refLayers[t.Name()]
		own = append(own, blockOut{value: t.Output(0), ref: l.Node.Output(0), axis: axisOf(t), rows: rowsOf(l)})
	}
	if b.end == "" || slices.ContainsFunc(own, func(o blockOut) bool { return o.axis < 0 || !slices.Equal(o.rows, own[0].rows) }) {
		return own
	}
	es, ok1 := shapes.Of(b.end)
	ts, ok2 := shapes.Of(own[0].value)
	if !ok1 || !ok2 || len(es.Dims) != len(ts.Dims) {
		return own
	}
	// Forward from the last layers' outputs: every node on the way to
	// the end must be channelwise. What joins them (a skip path) may
	// come from anywhere: a channelwise op's operands share the end's
	// channels.
	toEnd := map[string]bool{b.end: true} // values the end depends on through unweighted nodes
	for i := len(b.nodes) - 1; i >= 0; i-- {
		n := b.nodes[i]
		if slices.ContainsFunc(n.Proto.Output, func(o string) bool { return toEnd[o] }) && !slices.Contains(b.targets, n) {
			for _, in := range n.Proto.Input {
				toEnd[in] = true
			}
		}
	}
	from := map[string]bool{}
	for _, o := range own {
		from[o.value] = true
	}
	for _, n := range b.nodes {
		if slices.Contains(b.targets, n) || !toEnd[n.Output(0)] || !slices.ContainsFunc(n.Proto.Input, func(in string) bool { return from[in] }) {
			continue
		}
		if !channelwise[n.Op()] || len(n.Proto.Output) != 1 {
			return own
		}
		from[n.Output(0)] = true
	}
	if !from[b.end] {
		return own
	}
	return []blockOut{{value: b.end, ref: b.end, axis: own[0].axis, rows: own[0].rows}}
}

// FitBlocks trains m's blocks toward ref (the model before pruning).
// rowsOf gives, for a layer of ref, the output rows its node in m kept.
// Blocks whose ops have no gradient rule keep their weights and are
// named in the notes.
func FitBlocks(ctx context.Context, m, ref *graph.Model, rowsOf func(*calib.Layer) []int, src *calib.Source, cfg BlockFitConfig) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("prune: block fitting needs calibration data")
	}
	if cfg.Steps <= 0 {
		return nil, nil
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = DefaultBlockFitBatch
	}
	batch = min(src.Fit(batch), src.Len())
	lr := cfg.LR
	if lr <= 0 {
		lr = DefaultBlockFitLR
	}
	if cfg.Output < 0 || cfg.Output >= 1 {
		return nil, fmt.Errorf("block fit: the output weight %g is not in [0, 1)", cfg.Output)
	}
	if src.Len()/batch < 2 {
		return []string{fmt.Sprintf("block fit skipped: %d calibration samples make fewer than two batches of %d (one is held out)", src.Len(), batch)}, nil
	}
	input, err := dataInput(m, src)
	if err != nil {
		return []string{fmt.Sprintf("block fit skipped: %v", err)}, nil
	}
	sample, err := src.Batch(0, batch)
	if err != nil {
		return nil, err
	}
	tokens := tokenIDs(sample[input])
	sizes := map[string][]int64{}
	for name, v := range sample {
		sizes[name] = v.Shape
	}
	shapes, err := grad.ShapesAt(m, sizes)
	if err != nil {
		return nil, err
	}
	refLayers := layersByName(ref)
	blocks, baked, fixed := cutBlocks(m.Graph, shapes, input, src.Filled(), func(n *graph.Node) bool { return refLayers[n.Name()] != nil })
	for _, name := range src.Filled() {
		// The same in every batch of this size: baked like a constant.
		x, err := sample[name].Int64s()
		if err != nil {
			return nil, err
		}
		baked[name] = graph.Int64Tensor(name, slices.Clone(sample[name].Shape), x)
	}
	if len(blocks) == 0 {
		return []string{"block fit skipped: no block with a weighted layer"}, nil
	}
	if err := bakeFixed(ctx, m, shapes, src, batch, fixed, baked); err != nil {
		return nil, err
	}
	for i := range blocks {
		blocks[i].outs = blockOuts(m.Graph, shapes, blocks[i], refLayers, rowsOf)
	}
	// Both models run segment by segment, as the least-squares fit's do:
	// a block's weights change after its input is captured and before
	// any node reading its output runs.
	seg, err := newSegmentRuns(m, ref, src, batch, nil)
	if err != nil {
		return nil, err
	}
	var outT *outputTargets
	if cfg.Output > 0 && len(blocks) > 1 {
		if outT, err = newOutputTargets(ctx, ref, shapes, src, batch, tokens); err != nil {
			return nil, err
		}
	}
	var notes []string
	fitted, params, kl, withOut := 0, 0, 0, 0
	var before, after float64
	for i, b := range blocks {
		progress.Report(ctx, "block fit", i, len(blocks))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if v := notPerSample(shapes, batch, b); v != "" {
			// A Swin block's windows fold into the leading axis: its
			// values hold no row per sample to batch and match.
			notes = append(notes, fmt.Sprintf("block ending at %s kept its weights: %s does not lead with the batch of %d", b.nodes[len(b.nodes)-1].Name(), v, batch))
			continue
		}
		xs, err := blockInputs(ctx, seg.pruned, src, b.input, input, batch)
		if err != nil {
			return nil, err
		}
		loss := blockLoss(m, shapes, b, tokens)
		refs, scales, err := blockTargets(ctx, seg.dense, b.outs, batch, loss == grad.MSE)
		if err != nil {
			return nil, err
		}
		if len(xs) != len(refs) || len(xs) < 2 {
			return nil, fmt.Errorf("block fit: %d input batches and %d target batches of %d", len(xs), len(refs), batch)
		}
		var train map[string]bool
		var mixed *grad.Mixed
		if outT != nil && loss == grad.MSE && i < len(blocks)-1 {
			if len(outT.refs) != len(refs) {
				return nil, fmt.Errorf("block fit: %d output batches and %d target batches", len(outT.refs), len(refs))
			}
			b, train = withOutput(m.Graph, b, outT)
			if outT.kl {
				mixed = &grad.Mixed{Head: len(refs[0]) / batch, Classes: len(outT.out.rows), Weight: cfg.Output}
				refs, scales = appendTargets(refs, scales, outT, batch)
			} else {
				refs, scales = mixTargets(refs, scales, outT, cfg.Output, batch)
			}
			withOut++
		}
		sub, err := blockModel(m, b, xs[0][b.input], scales, baked, loss)
		if err != nil {
			return nil, err
		}
		res, err := trainBlock(ctx, sub, b.input, xs, refs, cfg.Steps, lr, objective{loss, mixed}, train)
		if err != nil {
			if errors.Is(err, grad.ErrUnsupported) {
				notes = append(notes, fmt.Sprintf("block ending at %s kept its weights: %v", b.nodes[len(b.nodes)-1].Name(), err))
				continue
			}
			return nil, fmt.Errorf("block fit (block ending at %s): %w", b.nodes[len(b.nodes)-1].Name(), err)
		}
		if err := res.net.WriteBack(m); err != nil {
			return nil, err
		}
		fitted++
		if loss == grad.KL {
			kl++
		}
		params += res.params
		before += res.start
		after += res.best
	}
	what := "relative MSE"
	if kl > 0 {
		what = "relative MSE, KL on the logits"
	}
	if withOut > 0 {
		term := "relative MSE"
		if outT.kl {
			term = "KL"
		}
		what += fmt.Sprintf("; %d inner blocks weighed the model output (%s) at %g", withOut, term, cfg.Output)
	}
	notes = append(notes, fmt.Sprintf("%d of %d blocks fitted by gradient (%d Adam steps each, batches of %d, lr %g cosine, %d weights): held-out block loss (%s) summed over blocks %.4g → %.4g",
		fitted, len(blocks), cfg.Steps, batch, lr, params, what, before, after))
	return notes, nil
}

// blockLoss is the loss block b's fit minimises. A block that ends at
// the model's logits (it matches one value, the first graph output,
// which outputLoss takes for logits) is fitted by the KL toward the
// dense softmax, as --recover kd compares them: what the logits are
// read for is their softmax, and the MSE spends the fit on offsets the
// softmax ignores. Every other block matches the relative MSE of
// blockTargets.
func blockLoss(m *graph.Model, shapes *graph.Shapes, b fitBlock, tokens bool) grad.Loss {
	if len(b.outs) != 1 || b.outs[0].value != m.Graph.Outputs[0].Name {
		return grad.MSE
	}
	t, ok := shapes.Of(b.outs[0].value)
	if !ok || !t.Ranked {
		return grad.MSE
	}
	return outputLoss(m, len(t.Dims), tokens)
}

// layersByName maps the name of each of m's weighted layers to it.
func layersByName(m *graph.Model) map[string]*calib.Layer {
	out := map[string]*calib.Layer{}
	for _, l := range weightedLayers(m, func(*calib.Layer) bool { return true }) {
		out[l.Node.Name()] = l
	}
	return out
}

// Fittable says why FitBlocks cannot cut m into blocks on src's data,
// nil when it can: blocks are cut from one input, float or integer
// (token ids, read by the first block's embedding). Inputs src fills
// beside the token ids (an attention mask of ones, positions 0..seq-1:
// calib.Source.Filled) are the same in every batch, so they are baked
// into the blocks like the values the input's size decides.
func Fittable(m *graph.Model, src *calib.Source) error {
	_, err := dataInput(m, src)
	return err
}

// dataInput is the one input of m that src's data feeds.
func dataInput(m *graph.Model, src *calib.Source) (string, error) {
	filled := src.Filled()
	var data []string
	for _, in := range m.Graph.Inputs {
		if !slices.Contains(filled, in.Name) {
			data = append(data, in.Name)
		}
	}
	if len(data) != 1 {
		return "", fmt.Errorf("the model takes %d inputs the data feeds (%s); blocks are cut from one input", len(data), strings.Join(data, ", "))
	}
	return data[0], nil
}

// SampleMACs returns m's multiply-accumulates for one calibration
// sample of src, counted at the sample's own size (a decoder's window
// length, which a count with symbolic dims taken as 1 would miss).
func SampleMACs(m *graph.Model, src *calib.Source) (int64, error) {
	shapes, err := sampleShapes(m, src)
	if err != nil {
		return 0, err
	}
	return graph.CountWithShapes(m, shapes).MACs, nil
}

// OutputByKL reports whether the block fit and the distillation match
// m's first output by the KL of its softmax (logits: outputLoss) on
// src's data, rather than by its relative MSE: the measure a fitted
// model is best compared by.
func OutputByKL(m *graph.Model, src *calib.Source) (bool, error) {
	input, err := dataInput(m, src)
	if err != nil {
		return false, err
	}
	one, err := src.Batch(0, 1)
	if err != nil {
		return false, err
	}
	shapes, err := shapesAt(m, one)
	if err != nil {
		return false, err
	}
	t, ok := shapes.Of(m.Graph.Outputs[0].Name)
	if !ok || !t.Ranked {
		return false, nil
	}
	return outputLoss(m, len(t.Dims), tokenIDs(one[input])) == grad.KL, nil
}

// sampleShapes infers m's shapes at the size of one calibration sample
// of src, every input's.
func sampleShapes(m *graph.Model, src *calib.Source) (*graph.Shapes, error) {
	one, err := src.Batch(0, 1)
	if err != nil {
		return nil, err
	}
	return shapesAt(m, one)
}

// shapesAt infers m's shapes at the sizes of the inputs in.
func shapesAt(m *graph.Model, in map[string]tensor.Dense) (*graph.Shapes, error) {
	dims := map[string][]int64{}
	for name, d := range in {
		dims[name] = d.Shape
	}
	return grad.ShapesAt(m, dims)
}

// notPerSample returns the first of block b's input and matched values
// whose leading axis is not the batch (at the fixed input size), "" when
// every one has a row per sample.
func notPerSample(shapes *graph.Shapes, batch int, b fitBlock) string {
	vals := []string{b.input}
	for _, o := range b.outs {
		vals = append(vals, o.value)
	}
	for _, v := range vals {
		s, ok := shapes.Of(v)
		if !ok || len(s.Dims) == 0 {
			return v
		}
		if n, ok := s.Dims[0].Value(); !ok || n != int64(batch) {
			return v
		}
	}
	return ""
}

// cutBlocks cuts g into blocks. A cut follows a node after which one
// float value alone is still to be read: values the input's size alone
// decides (shapes, a causal mask, rotary tables) are known at the fixed
// input size and baked into the blocks that read them. A run of nodes
// without a weighted layer joins the next block, as does one with fewer
// than MinBlockLayers weighted layers; the last run ends at the graph's
// outputs, and joins the block before it when it holds fewer. baked
// maps every integer shape value the shape inference evaluates to its
// contents; fixed lists the other size-decided values that are live
// past the node making them, which a run of the model gives
// (bakeFixed).
func cutBlocks(g *graph.Graph, shapes *graph.Shapes, input string, filled []string, weighted func(*graph.Node) bool) (blocks []fitBlock, baked map[string]*onnx.TensorProto, fixed []string) {
	nodes := g.Nodes
	sized := sizeDecided(g, filled)
	last := map[string]int{}
	for i, n := range nodes {
		for _, in := range append(slices.Clone(n.Proto.Input), n.Implicit...) {
			last[in] = i
		}
	}
	for _, o := range g.Outputs {
		last[o.Name] = len(nodes)
	}
	static := map[string]bool{}
	isConst := func(v string) bool {
		if v == "" || static[v] {
			return true
		}
		_, ok := g.Constant(v)
		return ok
	}
	// A value is classified once, as it becomes live.
	const (
		liveFloat = iota // unknown types count as float: fewer cuts, never a wrong one
		liveBaked        // a value the input's size alone decides: baked, never a reason not to cut
		liveData         // an integer value the data decides: no cut while it lives
	)
	baked = map[string]*onnx.TensorProto{}
	classify := func(v string) int {
		s, ok := shapes.Of(v)
		if ok && sized[v] && bakeable(s) {
			if dims, ok := shapes.IntValue(v); !ok || len(s.Dims) > 1 || !allKnown(dims) {
				fixed = append(fixed, v)
				return liveBaked
			}
		}
		if !ok || graph.IsFloat(s.Elem) {
			return liveFloat
		}
		if s.Elem != graph.DataType(onnx.TensorProto_INT64) || len(s.Dims) > 1 {
			return liveData // int64 scalars and vectors (shapes) alone are baked
		}
		dims, ok := shapes.IntValue(v)
		if !ok {
			return liveData
		}
		vals := make([]int64, len(dims))
		for i, d := range dims {
			x, ok := d.Value()
			if !ok {
				return liveData
			}
			vals[i] = x
		}
		var shape []int64
		if len(s.Dims) == 1 {
			shape = []int64{int64(len(vals))}
		}
		baked[v] = graph.Int64Tensor(v, shape, vals)
		return liveBaked
	}
	live := map[string]int{input: classify(input)}
	cur := fitBlock{input: input}
	for i, n := range nodes {
		allConst := len(n.Implicit) == 0
		for _, in := range n.Proto.Input {
			if !isConst(in) {
				allConst = false
			}
		}
		for _, o := range n.Proto.Output {
			if allConst {
				static[o] = true
			} else if o != "" && last[o] > i {
				live[o] = classify(o)
			}
		}
		cur.nodes = append(cur.nodes, n)
		for v := range live {
			if last[v] <= i {
				delete(live, v)
			}
		}
		var float []string
		cut := true
		for v, kind := range live {
			switch kind {
			case liveFloat:
				float = append(float, v)
			case liveData:
				cut = false
			}
		}
		if !cut || len(float) != 1 || i == len(nodes)-1 {
			continue
		}
		if countFunc(cur.nodes, weighted) < MinBlockLayers {
			continue // joins the next block
		}
		cur.end = float[0]
		cur.targets = terminalLayers(g, cur.nodes, []string{float[0]}, weighted)
		blocks = append(blocks, cur)
		cur = fitBlock{input: float[0]}
	}
	if slices.ContainsFunc(cur.nodes, weighted) {
		var ends []string
		for _, o := range g.Outputs {
			ends = append(ends, o.Name)
		}
		if len(ends) == 1 {
			cur.end = ends[0]
		}
		if n := len(blocks); n > 0 && countFunc(cur.nodes, weighted) < MinBlockLayers {
			// A head alone (a decoder's LM head after its last
			// residual Add) is a linear map of a fixed input: it joins
			// the block before it, so that the logits' fit moves a
			// nonlinear layer too.
			cur.nodes, cur.input = append(blocks[n-1].nodes, cur.nodes...), blocks[n-1].input
			blocks = blocks[:n-1]
		}
		cur.targets = terminalLayers(g, cur.nodes, ends, weighted)
		blocks = append(blocks, cur)
	}
	out := blocks[:0]
	for _, b := range blocks {
		if len(b.targets) > 0 {
			out = append(out, b)
		}
	}
	return out, baked, fixed
}

// sizeDecided returns the values of g that the input's size alone
// decides: a Shape or Size of anything, the filled inputs, and what is
// computed from those and constants only (a Range over the sequence
// length, the causal mask from it, the rotary cos and sin tables).
func sizeDecided(g *graph.Graph, filled []string) map[string]bool {
	sized := map[string]bool{}
	for _, name := range filled {
		sized[name] = true
	}
	for _, n := range g.Nodes {
		ok := n.Op() == "Shape" || n.Op() == "Size"
		if !ok && !random(n.Op()) {
			ok = true
			for _, in := range append(slices.Clone(n.Proto.Input), n.Implicit...) {
				if _, c := g.Constant(in); in != "" && !c && !sized[in] {
					ok = false
					break
				}
			}
		}
		if ok {
			for _, o := range n.Proto.Output {
				sized[o] = true
			}
		}
	}
	return sized
}

// random reports whether op draws new values at every run, which a
// baked value would freeze.
func random(op string) bool {
	return strings.HasPrefix(op, "Random") || op == "Multinomial" || op == "Bernoulli" || op == "Dropout"
}

// bakeable reports whether a value of shape s can be baked from a run:
// float32 or int64, every dim known.
func bakeable(s graph.TensorShape) bool {
	if s.Elem != graph.DataType(onnx.TensorProto_FLOAT) && s.Elem != graph.DataType(onnx.TensorProto_INT64) {
		return false
	}
	for _, d := range s.Dims {
		if _, ok := d.Value(); !ok {
			return false
		}
	}
	return true
}

func allKnown(dims []graph.Dim) bool {
	for _, d := range dims {
		if _, ok := d.Value(); !ok {
			return false
		}
	}
	return true
}

// errBaked stops a capture after its first batch.
var errBaked = errors.New("baked")

// bakeFixed runs m on one batch of src for the values names, which the
// input's size alone decides, and adds them to baked. A value whose
// run gives another shape than the shape inference's at that size
// (the inference was wrong about it) is an error.
func bakeFixed(ctx context.Context, m *graph.Model, shapes *graph.Shapes, src *calib.Source, batch int, names []string, baked map[string]*onnx.TensorProto) error {
	if len(names) == 0 {
		return nil
	}
	seg, err := calib.NewSegments(m, src, batch)
	if err != nil {
		return err
	}
	err = seg.Capture(ctx, names, func(vals map[string]tensor.Dense, _, rows int) error {
		if rows != batch {
			return nil // a first one-sample run: a class token expanded to its batch differs
		}
		for _, v := range names {
			d := vals[v]
			s, _ := shapes.Of(v)
			if !slices.EqualFunc(s.Dims, d.Shape, func(dim graph.Dim, n int64) bool { k, _ := dim.Value(); return k == n }) {
				return fmt.Errorf("block fit: %s has shape %v in a run of %d samples, not the inferred %v", v, d.Shape, batch, s.Dims)
			}
			switch d.DType {
			case tensor.Float32:
				f, err := d.Float32s()
				if err != nil {
					return err
				}
				baked[v] = graph.FloatTensor(v, slices.Clone(d.Shape), slices.Clone(f))
			case tensor.Int64:
				x, err := d.Int64s()
				if err != nil {
					return err
				}
				baked[v] = graph.Int64Tensor(v, slices.Clone(d.Shape), slices.Clone(x))
			default:
				return fmt.Errorf("block fit: %s is %v, which is not baked", v, d.DType)
			}
		}
		return errBaked
	})
	if errors.Is(err, errBaked) {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("block fit: no batch of %d samples to bake %s from", batch, names[0])
	}
	return err
}

// MinBlockLayers is the fewest weighted layers a block holds (the only
// block may hold fewer): a layer cut off alone (a MobileNet block's
// expansion, a transition conv) is fitted with the layers after it, so
// that what it computes is chosen for what they make of it, and a last
// one (a head) with the layers before it.
var MinBlockLayers = 2

func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// terminalLayers returns the weighted nodes among nodes whose output
// reaches one of ends through unweighted nodes alone, in graph order.
func terminalLayers(g *graph.Graph, nodes []*graph.Node, ends []string, weighted func(*graph.Node) bool) []*graph.Node {
	reach := map[string]bool{}
	for _, e := range ends {
		reach[e] = true
	}
	var out []*graph.Node
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		hit := false
		for _, o := range n.Proto.Output {
			if reach[o] {
				hit = true
			}
		}
		if !hit {
			continue
		}
		if weighted(n) {
			out = append(out, n)
			continue
		}
		for _, in := range n.Proto.Input {
			reach[in] = true
		}
	}
	slices.Reverse(out)
	return out
}

// capture runs seg for names and returns, per name, the values of all
// samples in order, flattened per sample (after take, which may select
// a name's rows), and each name's per-sample shape. The segment runner
// sizes its own runs; the samples are re-batched by the caller.
func capture(ctx context.Context, seg *calib.Segments, names []string, take func(i int, d tensor.Dense) (tensor.Dense, error)) ([][]float32, [][]int64, error) {
	data := make([][]float32, len(names))
	shapes := make([][]int64, len(names))
	err := seg.Capture(ctx, names, func(vals map[string]tensor.Dense, _, _ int) error {
		for i, name := range names {
			d, err := take(i, vals[name])
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			f, err := d.Float32s()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			data[i] = append(data[i], f...)
			shapes[i] = slices.Clone(d.Shape[1:])
		}
		return nil
	})
	return data, shapes, err
}

// blockInputs returns the block input's values in batches of batch (a
// last partial batch dropped), as the pruned model with the blocks
// before already fitted computes them.
func blockInputs(ctx context.Context, seg *calib.Segments, src *calib.Source, name, graphInput string, batch int) ([]map[string]tensor.Dense, error) {
	var xs []map[string]tensor.Dense
	if name == graphInput {
		err := src.Each(ctx, batch, func(in map[string]tensor.Dense) error {
			if d := in[name]; len(d.Shape) > 0 && int(d.Shape[0]) == batch {
				xs = append(xs, map[string]tensor.Dense{name: d})
			}
			return nil
		})
		return xs, err
	}
	data, shapes, err := capture(ctx, seg, []string{name}, func(_ int, d tensor.Dense) (tensor.Dense, error) { return d, nil })
	if err != nil {
		return nil, err
	}
	width := 1
	for _, d := range shapes[0] {
		width *= int(d)
	}
	shape := append([]int64{int64(batch)}, shapes[0]...)
	for b := 0; (b+1)*batch*width <= len(data[0]); b++ {
		d, err := tensor.New(shape, slices.Clone(data[0][b*batch*width:(b+1)*batch*width]))
		if err != nil {
			return nil, err
		}
		xs = append(xs, map[string]tensor.Dense{name: d})
	}
	return xs, nil
}

// blockTargets returns, per batch of batch samples, the reference
// outputs of the block's target layers at the rows their pruned nodes
// kept, each flattened per sample and scaled so that every target
// weighs the same in the loss (by its mean square over the data),
// concatenated per sample; and the scales. Unscaled (scales of 1), the
// outputs are the reference's own, as a KL loss needs its logits.
func blockTargets(ctx context.Context, seg *calib.Segments, outs []blockOut, batch int, scaled bool) ([][]float32, []float64, error) {
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = o.ref
	}
	data, shapes, err := capture(ctx, seg, names, func(i int, d tensor.Dense) (tensor.Dense, error) {
		idx := make([]int64, len(outs[i].rows))
		for j, r := range outs[i].rows {
			idx[j] = int64(r)
		}
		return d.Take(outs[i].axis, idx)
	})
	if err != nil {
		return nil, nil, err
	}
	k := len(names)
	ms := make([]float64, k)
	width := make([]int, k)
	total := 0
	for i := range k {
		for _, v := range data[i] {
			ms[i] += float64(v) * float64(v)
		}
		ms[i] = max(ms[i]/float64(max(len(data[i]), 1)), 1e-12)
		width[i] = 1
		for _, d := range shapes[i] {
			width[i] *= int(d)
		}
		total += width[i]
	}
	// The loss is the mean over the concatenation, Σ s_i² n_i MSE_i / N;
	// with s_i² = N / (k n_i ms_i) it is the mean over targets of
	// MSE_i / ms_i.
	scales := make([]float64, k)
	for i := range k {
		scales[i] = 1
		if scaled {
			scales[i] = math.Sqrt(float64(total) / (float64(k) * float64(width[i]) * ms[i]))
		}
	}
	samples := len(data[0]) / width[0]
	var refs [][]float32
	for b := 0; (b+1)*batch <= samples; b++ {
		out := make([]float32, 0, batch*total)
		for s := b * batch; s < (b+1)*batch; s++ {
			for i := range k {
				for _, v := range data[i][s*width[i] : (s+1)*width[i]] {
					out = append(out, float32(float64(v)*scales[i]))
				}
			}
		}
		refs = append(refs, out)
	}
	return refs, scales, nil
}

// blockOutput names the loss head's output in a block model.
const blockOutput = "pare.block_fit.out"

// blockModel builds a model of the block's nodes alone: its input the
// block input, the integer values it reads from before it baked in, and
// one output, the concatenation per sample of its targets' outputs,
// flattened and scaled (blockTargets); for the KL loss, its one matched
// value as it is (logits, with the classes last). Initializers are m's
// own, so the trained weights write back by name.
func blockModel(m *graph.Model, b fitBlock, x tensor.Dense, scales []float64, baked map[string]*onnx.TensorProto, loss grad.Loss) (*graph.Model, error) {
	g := m.Graph
	gp := &onnx.GraphProto{Name: proto.String("block")}
	produced := map[string]bool{b.input: true}
	included := map[*graph.Node]bool{}
	var add func(n *graph.Node)
	// Nodes computing constants (a Constant, a shape from a constant)
	// that the block reads are brought in with it.
	add = func(n *graph.Node) {
		if included[n] {
			return
		}
		included[n] = true
		for _, in := range n.Proto.Input {
			if p := g.Producer(in); p != nil && !produced[in] && baked[in] == nil && !slices.Contains(b.nodes, p) {
				add(p)
			}
		}
		gp.Node = append(gp.Node, n.Proto)
		for _, o := range n.Proto.Output {
			produced[o] = true
		}
	}
	for _, n := range b.nodes {
		add(n)
	}
	dims := &onnx.TensorShapeProto{}
	for _, d := range x.Shape {
		dims.Dim = append(dims.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	gp.Input = []*onnx.ValueInfoProto{{Name: proto.String(b.input), Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: proto.Int32(int32(x.DType)), Shape: dims}}}}}
	if loss == grad.MSE {
		var parts []string
		for i, t := range b.outs {
			flat, scaled := fmt.Sprintf("pare.block_fit.flat%d", i), fmt.Sprintf("pare.block_fit.scaled%d", i)
			scale := fmt.Sprintf("pare.block_fit.scale%d", i)
			gp.Initializer = append(gp.Initializer, graph.FloatTensor(scale, nil, []float32{float32(scales[i])}))
			gp.Node = append(gp.Node,
				&onnx.NodeProto{OpType: proto.String("Flatten"), Name: proto.String(flat), Input: []string{t.value}, Output: []string{flat},
					Attribute: []*onnx.AttributeProto{{Name: proto.String("axis"), Type: onnx.AttributeProto_INT.Enum(), I: proto.Int64(1)}}},
				&onnx.NodeProto{OpType: proto.String("Mul"), Name: proto.String(scaled), Input: []string{flat, scale}, Output: []string{scaled}})
			parts = append(parts, scaled)
		}
		gp.Node = append(gp.Node, &onnx.NodeProto{OpType: proto.String("Concat"), Name: proto.String(blockOutput), Input: parts, Output: []string{blockOutput},
			Attribute: []*onnx.AttributeProto{{Name: proto.String("axis"), Type: onnx.AttributeProto_INT.Enum(), I: proto.Int64(1)}}})
	} else {
		gp.Node = append(gp.Node, &onnx.NodeProto{OpType: proto.String("Identity"), Name: proto.String(blockOutput), Input: []string{b.outs[0].value}, Output: []string{blockOutput}})
	}
	// Values baked in from before the block are Constant nodes, not
	// initializers: the gradient engine trains every float initializer
	// and folds Constants (a decoder's rotary tables stay fixed).
	var consts []*onnx.NodeProto
	for _, n := range gp.Node {
		for _, in := range n.Input {
			if t, ok := baked[in]; ok && !produced[in] && g.Initializer(in) == nil {
				consts = append(consts, &onnx.NodeProto{OpType: proto.String("Constant"), Name: proto.String("pare.block_fit.baked." + in), Output: []string{in},
					Attribute: []*onnx.AttributeProto{{Name: proto.String("value"), Type: onnx.AttributeProto_TENSOR.Enum(), T: t}}})
				produced[in] = true
			}
		}
	}
	gp.Node = append(consts, gp.Node...)
	// Nodes the matched values do not depend on (a bias added after a
	// last layer whose own output is matched) are left out: their
	// weights would have no gradient.
	need := map[string]bool{blockOutput: true}
	var live []*onnx.NodeProto
	for i := len(gp.Node) - 1; i >= 0; i-- {
		n := gp.Node[i]
		if !slices.ContainsFunc(n.Output, func(o string) bool { return need[o] }) {
			continue
		}
		live = append(live, n)
		for _, in := range n.Input {
			need[in] = true
		}
	}
	slices.Reverse(live)
	gp.Node = live
	used := map[string]bool{}
	for _, n := range gp.Node {
		for _, in := range n.Input {
			used[in] = true
		}
	}
	for _, t := range g.Proto.Initializer {
		if used[t.GetName()] {
			gp.Initializer = append(gp.Initializer, t)
		}
	}
	gp.Output = []*onnx.ValueInfoProto{{Name: proto.String(blockOutput), Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32))}}}}}
	return graph.FromProto(&onnx.ModelProto{IrVersion: m.Proto.IrVersion, OpsetImport: m.Proto.OpsetImport, Graph: gp})
}

// blockRun is a trained block.
type blockRun struct {
	net         *grad.Net
	start, best float64 // held-out loss before and at the kept checkpoint
	params      int
}

// trainBlock runs Adam on the block model toward refs, the last batch
// held out: the weights kept are the checkpoint (the start included)
// with the lowest held-out loss, so the fit never leaves a block worse
// on data it did not train on. A non-nil trainable names the only weights
// that train (the block's own, when the model after it is in sub).
func trainBlock(ctx context.Context, sub *graph.Model, input string, xs []map[string]tensor.Dense, refs [][]float32, steps int, lr float64, obj objective, trainable map[string]bool) (*blockRun, error) {
	net, err := grad.BuildInputs(sub, map[string][]int64{input: xs[0][input].Shape})
	if err != nil {
		return nil, err
	}
	if trainable != nil {
		net.TrainOnly(func(name string) bool { return trainable[name] })
	}
	fit, err := obj.build(net)
	if err != nil {
		return nil, err
	}
	cols := net.Output.Shape()[net.Output.Dims()-1]
	train := len(xs) - 1
	held := func() (float64, error) {
		out, err := net.ForwardInputs(xs[train])
		if err != nil {
			return 0, err
		}
		if obj.mixed != nil {
			return obj.mixed.Distance(out, refs[train], net.Batch()), nil
		}
		return distance(obj.loss, out, refs[train], cols), nil
	}
	names := net.WeightNames()
	run := &blockRun{net: net}
	for _, n := range names {
		run.params += len(net.Data(n))
	}
	opt := newAdam(net, names, lr)
	snapshot := map[string][]float64{}
	best := math.Inf(1)
	checkpoint := func() error {
		l, err := held()
		if err != nil {
			return err
		}
		if l < best {
			best = l
			for _, n := range names {
				snapshot[n] = append(snapshot[n][:0], net.Data(n)...)
			}
		}
		return nil
	}
	if err := checkpoint(); err != nil {
		return nil, err
	}
	run.start = best
	for step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i := step % train
		if _, err := fit.StepInputs(xs[i], refs[i]); err != nil {
			return nil, fmt.Errorf("step %d: %w", step, err)
		}
		opt.lr = lrAt(ScheduleCosine, lr, step, steps)
		opt.step(fit)
		if (step+1)%checkEvery == 0 || step+1 == steps {
			if err := checkpoint(); err != nil {
				return nil, err
			}
		}
	}
	for n, v := range snapshot {
		copy(net.Data(n), v)
	}
	run.best = best
	return run, nil
}

// objective is what a block's fit minimises: loss, or the mixed loss of
// its own output and the model's logits when mixed is set.
type objective struct {
	loss  grad.Loss
	mixed *grad.Mixed
}

func (o objective) build(net *grad.Net) (*grad.Objective, error) {
	if o.mixed != nil {
		return grad.NewMixedObjective(net, *o.mixed)
	}
	return grad.NewObjective(net, o.loss)
}
