package calib

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/progress"
	"github.com/pare-dev/pare/tensor"
)

// ErrSegments marks a model or data the segment runner does not take
// (the caller captures from the whole model instead).
var ErrSegments = errors.New("segment capture unavailable")

// SegmentBudget bounds the bytes of values Segments keeps after its
// first capture; past it that capture fails with ErrSegments.
var SegmentBudget int64 = 1 << 30

// Segments captures values of a model whose weights change between
// captures in graph order, as sequential GPTQ needs: each capture runs
// only the nodes not run before that the wanted values depend on,
// starting from the values earlier captures computed and kept (the
// frontier: values some node not yet run reads). A node runs at most
// once, so a model captured value by value costs one forward pass over
// the data, not one per capture, and each onnxruntime session holds the
// weights of its own nodes only.
//
// This is exact when a weight changes only after every value read
// before it changes has been captured: nodes already run are not run
// again with the new weight. Sequential GPTQ meets it (a layer's weight
// changes after its input was captured, before its output is wanted).
// Samples go in the same batches every time, so values without a sample
// axis (shapes, masks) stay consistent.
type Segments struct {
	m      *graph.Model
	src    Batches
	bounds [][2]int
	ran    []bool                    // by node index
	kept   []map[string]tensor.Dense // per batch: frontier values
	bytes  int64
	max    int
	fixed  int
	sample int64 // bytes a sample's values took in the first run
	// Runs counts onnxruntime sessions, Nodes the nodes they ran.
	Runs, Nodes int
}

// NewSegments prepares segment captures of m over src, at most maxBatch
// samples per run.
func NewSegments(m *graph.Model, src Batches, maxBatch int) (*Segments, error) {
	if src.Len() == 0 {
		return nil, fmt.Errorf("calib: %w: no samples", ErrSegments)
	}
	s := &Segments{m: m, src: src, ran: make([]bool, len(m.Graph.Nodes)), max: max(maxBatch, 1), fixed: int(graph.FixedBatch(m))}
	if s.fixed > 0 && src.Len() < s.fixed {
		return nil, fmt.Errorf("calib: %w: %d samples, fewer than the model's fixed batch of %d", ErrData, src.Len(), s.fixed)
	}
	return s, nil
}

// rows returns the samples run: whole batches of a fixed-batch model.
func (s *Segments) rows() int {
	if s.fixed > 0 {
		return s.src.Len() - s.src.Len()%s.fixed
	}
	return s.src.Len()
}

// batch returns the samples per run after the first one-sample run:
// its values, kept or returned, fit half of RunBudget.
func (s *Segments) batch() int {
	if s.fixed > 0 {
		return s.fixed
	}
	return max(1, min(s.max, int(RunBudget/2/max(s.sample, 1))))
}

// segmentModel returns a model of nodes alone: feeds are its inputs
// (typed from the kept values or the graph's declarations), outs its
// outputs, and the initializers it reads are shared with m.
func (s *Segments) segmentModel(nodes []*graph.Node, feeds, outs []string) (*onnx.ModelProto, error) {
	g := s.m.Graph
	gp := &onnx.GraphProto{Name: g.Proto.Name}
	produced := map[string]bool{}
	for _, n := range nodes {
		gp.Node = append(gp.Node, n.Proto)
		for _, o := range n.Proto.Output {
			produced[o] = true
		}
	}
	// Values read by the nodes, their subgraphs included.
	used := map[string]bool{}
	for _, n := range nodes {
		for _, in := range append(append([]string(nil), n.Proto.Input...), n.Implicit...) {
			used[in] = true
		}
	}
	var sample map[string]tensor.Dense
	if len(s.kept) > 0 {
		sample = s.kept[0]
	}
	for _, f := range feeds {
		if !used[f] {
			continue
		}
		if d, ok := sample[f]; ok {
			gp.Input = append(gp.Input, valueInfo(f, d))
			continue
		}
		v := g.Value(f)
		if v == nil || v.Info == nil {
			return nil, fmt.Errorf("calib: %w: input %q has no declared type", ErrSegments, f)
		}
		gp.Input = append(gp.Input, v.Info)
	}
	for _, t := range g.Proto.Initializer {
		if used[t.GetName()] && !slices.Contains(feeds, t.GetName()) {
			gp.Initializer = append(gp.Initializer, t)
		}
	}
	for _, t := range g.Proto.SparseInitializer {
		if name := t.GetValues().GetName(); used[name] && !slices.Contains(feeds, name) {
			gp.SparseInitializer = append(gp.SparseInitializer, t)
		}
	}
	for _, vi := range g.Proto.ValueInfo {
		if produced[vi.GetName()] {
			gp.ValueInfo = append(gp.ValueInfo, vi)
		}
	}
	for _, o := range outs {
		vi := &onnx.ValueInfoProto{Name: proto.String(o)}
		if v := g.Value(o); v != nil && v.Info != nil {
			vi = v.Info
		}
		gp.Output = append(gp.Output, vi)
	}
	mp := &onnx.ModelProto{
		IrVersion:   s.m.Proto.IrVersion,
		OpsetImport: s.m.Proto.OpsetImport,
		Functions:   s.m.Proto.Functions,
		Graph:       gp,
		// A pruned cache's kept positions (ioslice): the segment's graph
		// inputs are fed the original's data.
		MetadataProps: s.m.Proto.MetadataProps,
	}
	return mp, nil
}

// valueInfo declares name with d's element type and rank, every
// dimension symbolic (batches differ in size).
func valueInfo(name string, d tensor.Dense) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for i := range d.Shape {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
			Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: name + "_d" + strconv.Itoa(i)},
		})
	}
	return &onnx.ValueInfoProto{Name: proto.String(name), Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: proto.Int32(int32(d.DType)), Shape: shape},
	}}}
}

// Ran reports whether node n has run (its inputs will not be read
// again by a capture).
func (s *Segments) Ran(n *graph.Node) bool { return n.Index < len(s.ran) && s.ran[n.Index] }

// KeptBytes returns the bytes of values kept between captures.
func (s *Segments) KeptBytes() int64 { return s.bytes }

// Capture runs the nodes names depend on that have not run, over every
// sample, and gives visit each batch's values of names (all of them),
// its first sample and number of samples.
func (s *Segments) Capture(ctx context.Context, names []string, visit func(vals map[string]tensor.Dense, first, rows int) error) error {
	g := s.m.Graph
	kept := map[string]bool{}
	if len(s.kept) > 0 {
		for n := range s.kept[0] {
			kept[n] = true
		}
	}
	// The nodes to run: producers of what is wanted, back to kept values,
	// graph inputs and constants.
	var nodes []*graph.Node
	inNodes := map[*graph.Node]bool{}
	var feeds []string
	fed := map[string]bool{}
	stack := append([]string(nil), names...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == "" || fed[v] {
			continue
		}
		val := g.Value(v)
		if val == nil {
			return fmt.Errorf("calib: no value %q", v)
		}
		if kept[v] || val.Producer == nil && val.Initializer == nil && val.Sparse == nil {
			fed[v] = true
			feeds = append(feeds, v)
			continue
		}
		p := val.Producer
		if p == nil || inNodes[p] {
			continue
		}
		if s.ran[p.Index] {
			return fmt.Errorf("calib: %w: %q was computed by a capture before and not kept", ErrSegments, v)
		}
		inNodes[p] = true
		nodes = append(nodes, p)
		stack = append(stack, p.Proto.Input...)
		stack = append(stack, p.Implicit...)
	}
	slices.SortFunc(nodes, func(a, b *graph.Node) int { return a.Index - b.Index })
	for _, n := range nodes {
		s.ran[n.Index] = true
	}
	// What this run computes and a node not yet run reads is kept.
	var outs []string
	outSet := map[string]bool{}
	for _, n := range nodes {
		for _, o := range n.Proto.Output {
			if o == "" || outSet[o] {
				continue
			}
			need := slices.Contains(names, o)
			for _, c := range g.Consumers(o) {
				if !s.ran[c.Index] {
					need = true
				}
			}
			if need {
				outSet[o] = true
				outs = append(outs, o)
			}
		}
	}
	if err := s.run(ctx, nodes, feeds, outs, names, visit); err != nil {
		return err
	}
	s.Nodes += len(nodes)
	// Values every reader of which has run are dropped.
	for name := range kept {
		stay := false
		for _, c := range g.Consumers(name) {
			if !s.ran[c.Index] {
				stay = true
			}
		}
		if !stay {
			for _, b := range s.kept {
				d := b[name]
				s.bytes -= int64(d.Len() * d.DType.Size())
				delete(b, name)
			}
		}
	}
	return nil
}

// run runs nodes over the batches, feeding feeds (kept values, graph
// inputs) and keeping outs.
func (s *Segments) run(ctx context.Context, nodes []*graph.Node, feeds, outs, names []string, visit func(map[string]tensor.Dense, int, int) error) error {
	var sess *ort.Session
	var inputs []string
	if len(nodes) > 0 {
		mp, err := s.segmentModel(nodes, feeds, outs)
		if err != nil {
			return err
		}
		for _, vi := range mp.Graph.Input {
			inputs = append(inputs, vi.GetName())
		}
		b, dir, err := graph.MarshalMapped(mp)
		if err != nil {
			return fmt.Errorf("calib: %w", err)
		}
		// One thread and basic optimisations, as Stream's sessions.
		sess, err = ort.NewSession(b, ort.Options{Threads: 1, OptLevel: ort.OptBasic, ExternalDataDir: dir})
		if err != nil {
			return fmt.Errorf("calib: segment of %d nodes (%s…): %w", len(nodes), nodes[0].Name(), err)
		}
		defer sess.Close()
		s.Runs++
	}
	first := s.bounds == nil
	if first {
		s.bounds = [][2]int{{0, 1}}
		if s.fixed > 0 {
			s.bounds[0][1] = s.fixed
		}
	}
	rows := s.rows()
	for k := 0; k < len(s.bounds) || first && s.bounds[len(s.bounds)-1][1] < rows; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if k == len(s.bounds) {
			s.bounds = append(s.bounds, [2]int{s.bounds[k-1][1], min(s.bounds[k-1][1]+s.batch(), rows)})
		}
		if k == len(s.kept) {
			s.kept = append(s.kept, map[string]tensor.Dense{})
		}
		i, j := s.bounds[k][0], s.bounds[k][1]
		kept := s.kept[k]
		vals := map[string]tensor.Dense{}
		var batch map[string]tensor.Dense
		for _, f := range feeds {
			if d, ok := kept[f]; ok {
				vals[f] = d
				continue
			}
			if batch == nil {
				var err error
				if batch, err = s.src.Batch(i, j); err != nil {
					return err
				}
			}
			d, ok := batch[f]
			if !ok {
				return fmt.Errorf("calib: %w: no data for input %q", ErrData, f)
			}
			vals[f] = d
		}
		if sess != nil {
			in := make(map[string]tensor.Dense, len(inputs))
			for _, n := range inputs {
				in[n] = vals[n]
			}
			res, err := sess.Run(ctx, in, outs)
			if err != nil {
				return fmt.Errorf("calib: %w", err)
			}
			for n, o := range outs {
				vals[o] = res[n]
				kept[o] = res[n]
				s.bytes += int64(res[n].Len() * res[n].DType.Size())
			}
			if first && k == 0 && j < rows {
				s.sample = s.bytes / int64(max(j-i, 1))
			}
		}
		want := make(map[string]tensor.Dense, len(names))
		for _, n := range names {
			d, ok := vals[n]
			if !ok {
				return fmt.Errorf("calib: %w: %q not computed", ErrSegments, n)
			}
			want[n] = d
		}
		if err := visit(want, i, j-i); err != nil {
			return err
		}
		// Only the first capture may fail on the budget: later ones run
		// after weights changed, when the caller cannot start again.
		if s.Runs == 1 && s.bytes > SegmentBudget {
			return fmt.Errorf("calib: %w: values kept between captures past %d MB", ErrSegments, SegmentBudget>>20)
		}
		progress.Report(ctx, "calibration", j, rows)
		if k%8 == 7 {
			runtime.GC()
		}
	}
	return nil
}
