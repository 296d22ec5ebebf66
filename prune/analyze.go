package prune

import (
	"fmt"
	"regexp"
	"slices"
	"sort"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Options controls the analysis.
type Options struct {
	// Ignore freezes every group touching a node or initializer whose
	// name matches.
	Ignore *regexp.Regexp
	// HeadDim prunes attention head_dim uniformly across heads instead of
	// whole heads: where a feature axis is split into heads × head_dim
	// for attention, the head_dim positions carry the channels.
	HeadDim bool
	// KVGroups prunes grouped-query attention by whole KV groups (a
	// key/value head with its query heads) instead of query heads inside
	// every KV group (op_reshape.go, repeatsKV).
	KVGroups bool
	// KeepInterface freezes channels that reach the model's inputs and
	// outputs even where they are a KV cache's heads, which are otherwise
	// pruned with the cache's declared sizes rewritten (iface.go).
	KeepInterface bool
	// ConvGroups prunes grouped convolutions by whole groups (a group's
	// input channels, its filters and outputs together; `group` is
	// rewritten) instead of the same offset inside every group.
	ConvGroups bool
}

// DimRef names one axis of a value.
type DimRef struct {
	Value string `json:"value"`
	Axis  int    `json:"axis"`
}

// Member kinds.
const (
	KindWeightOut = "weight-out" // output channels of a Conv/Gemm/MatMul weight
	KindWeightIn  = "weight-in"  // input channels of a Conv/Gemm/MatMul weight
	KindBias      = "bias"
	KindNormScale = "norm-scale" // BN/IN/LN gamma
	KindNormBias  = "norm-bias"
	KindNormStat  = "norm-stat" // BN running mean and variance
	KindConst     = "const"     // broadcast constant of an element-wise op, PRelu slope
	KindQParam    = "qparam"    // per-axis scale or zero point
)

// Member is one parameter slice of a group.
type Member struct {
	Tensor string   `json:"tensor"`
	Axis   int      `json:"axis"`
	Kind   string   `json:"kind"`
	Node   string   `json:"node"`
	Map    IndexMap `json:"map"`
	// Copy: the tensor is a constant fill (all-zero bias, all-one gamma)
	// that the exporter shared between unrelated readers; this reader
	// gets its own sliced copy (unshare.go).
	Copy bool `json:"copy,omitempty"`
	// SharedWith lists the other nodes reading the same tensor: a real
	// weight tie, pruned together.
	SharedWith []string `json:"shared_with,omitempty"`
}

// Group is a set of channels that must be pruned together.
type Group struct {
	ID int `json:"id"`
	// Name is the first node that produces the group's channels.
	Name string `json:"name"`
	// Size is the index space: the number of prunable channels.
	Size    int      `json:"size"`
	Members []Member `json:"members"`
	Dims    []DimRef `json:"-"`
	Frozen  bool     `json:"frozen,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	// Inexact says why removing even dead channels of this group changes
	// the outputs (a normalisation over the channel axis), "" when
	// pruning dead channels is exact.
	Inexact string `json:"inexact,omitempty"`
	// Kind is what the group's channels are (see kinds.go): heads,
	// head-dim, mlp, embed or channels.
	Kind string `json:"kind,omitempty"`
	// Interface names the model inputs and outputs that lose positions
	// with this group's channels (a KV cache's heads, iface.go).
	Interface []string `json:"interface,omitempty"`

	units  []int32 // element class root per index
	width  int     // channels per index on the group's dims (gcd; 0 when it has none)
	covers [][]int // index sets of which one must be kept (cover.go)
	// segment numbers each index (segments.go); segments counts them.
	segment  []int
	segments int
}

// Analysis is the channel dependency structure of a model.
type Analysis struct {
	Model  *graph.Model
	Groups []*Group

	g      *graph.Graph
	opts   Options
	labels map[string]map[int][]int32 // value → axis → element per position (-1: fixed)
	shapes map[string][]int64         // best-effort static shapes, -1 unknown dims, nil unknown rank
	uf     unionFind
	origin []string         // element → producing node
	frozen map[int32]string // element → first freeze reason
	inexct map[int32]string // element → inexactness reason
	params map[paramKey]*param
	porder []paramKey
	edits  []edit
	unitOf map[int32]unitRef // class root → group/index
	macs   []macTerm
	acts   []actTerm

	inferred  *graph.Shapes          // graph.InferShapes result (folded shape values), nil when it failed
	computed  map[inputRef][]int64   // computed int inputs pare may replace by constants (see shapecalc.go)
	leaves    map[inputRef]leafShape // computed shapes whose literal Concat parts Apply rewrites
	exposures []exposure             // labeled dims whose size the graph computes with
	marks     map[int32]string       // element → attention role ("head", "head-dim")
	kept      map[int32]string       // element → why it always stays (keepElems)
	nbits     map[string]nbitsTensor // MatMulNBits B, scales and zero points, counted as graph.Count does
	uses      map[string][]use       // constant → node inputs reading it (Identity followed)
	latency   LatencyModel           // for Target "latency" (latency.go); nil without

	filled map[string]bool // constant fills shared by deduplication (unshare.go)

	cacheAxes []ioAxis // KV-cache inputs and present outputs whose heads may shrink (iface.go)

	offsetConvs []string // grouped Convs pruned by offset that Options.ConvGroups would prune by whole groups
}

type unitRef struct{ group, index int }

type paramKey struct {
	tensor string
	axis   int
	copy   string // reader of a private copy of a shared fill, "" otherwise
	// facet tells apart label arrays that share one axis: a row-major
	// flattened [N·blocks] scale of MatMulNBits has one per output row and
	// one per block. A position stays when every facet keeps it.
	facet string
}

type param struct {
	key    paramKey
	kind   string
	node   string
	labels []int32
	reader *graph.Node // the node given a private copy (key.copy != "")
	input  int
}

// Analyze builds the channel groups of m.
func Analyze(m *graph.Model, opts Options) (*Analysis, error) {
	a := &Analysis{
		Model:  m,
		g:      m.Graph,
		opts:   opts,
		labels: map[string]map[int][]int32{},
		shapes: map[string][]int64{},
		frozen: map[int32]string{},
		inexct: map[int32]string{},
		params: map[paramKey]*param{},
	}
	a.seedShapes()
	a.findShared()
	for _, n := range a.g.Nodes {
		if err := a.visit(n); err != nil {
			return nil, fmt.Errorf("prune: node %q (%s): %w", n.Name(), n.Op(), err)
		}
	}
	a.settleExposures()
	a.settleOutputs()
	a.buildGroups()
	a.buildSegments()
	a.buildCovers()
	a.classify()
	a.addActMACs()
	return a, nil
}

func (a *Analysis) visit(n *graph.Node) error {
	if r, ok := msRule(n); ok {
		return r.analyze(a, n)
	}
	if n.Domain() != "" {
		a.freezeInputs(n, "custom-domain op "+n.Domain()+"."+n.Op())
		return nil
	}
	if len(n.Implicit) > 0 || hasSubgraph(n) {
		a.freezeInputs(n, "read by subgraph of "+n.Op())
		return nil
	}
	if a.opts.Ignore != nil && a.opts.Ignore.MatchString(n.Proto.GetName()) {
		defer a.freezeNode(n, "ignored")
	}
	a.freezePeriodic(n)
	r, ok := rules[n.Op()]
	if !ok {
		a.freezeInputs(n, "no rule for op "+n.Op())
		return nil
	}
	return r.analyze(a, n)
}

func hasSubgraph(n *graph.Node) bool {
	for _, at := range n.Proto.Attribute {
		if at.G != nil || len(at.Graphs) > 0 {
			return true
		}
	}
	return false
}

// --- labels -------------------------------------------------------------

// newElems creates n fresh channel elements produced by node.
func (a *Analysis) newElems(n int, node string) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = a.uf.add()
		a.origin = append(a.origin, node)
	}
	return out
}

func (a *Analysis) lab(value string) map[int][]int32 { return a.labels[value] }

func (a *Analysis) setLab(value string, axis int, l []int32) {
	if l == nil || !anyLabel(l) {
		return
	}
	m := a.labels[value]
	if m == nil {
		m = map[int][]int32{}
		a.labels[value] = m
	}
	m[axis] = l
}

func anyLabel(l []int32) bool {
	for _, e := range l {
		if e >= 0 {
			return true
		}
	}
	return false
}

// union couples two label arrays position by position. A labeled
// position facing a fixed one is frozen.
func (a *Analysis) union(x, y []int32, why string) {
	if len(x) != len(y) {
		a.freeze(x, why+": size mismatch")
		a.freeze(y, why+": size mismatch")
		return
	}
	for i := range x {
		switch {
		case x[i] >= 0 && y[i] >= 0:
			a.uf.union(x[i], y[i])
		case x[i] >= 0:
			a.freezeElem(x[i], why+": coupled with a fixed channel")
		case y[i] >= 0:
			a.freezeElem(y[i], why+": coupled with a fixed channel")
		}
	}
}

func (a *Analysis) freezeElem(e int32, reason string) {
	if _, ok := a.frozen[e]; !ok {
		a.frozen[e] = reason
	}
}

// keepElems marks elements that always stay, without freezing the group
// they are in: a packed projection whose query columns prune while its
// key/value columns must not (GroupQueryAttention removing query heads
// inside KV groups). Their classes form no index of any group; labels
// and members see them as fixed positions.
func (a *Analysis) keepElems(l []int32, reason string) {
	if a.kept == nil {
		a.kept = map[int32]string{}
	}
	for _, e := range l {
		if _, ok := a.kept[e]; e >= 0 && !ok {
			a.kept[e] = reason
		}
	}
}

// keptClasses returns the class roots of kept elements.
func (a *Analysis) keptClasses() map[int32]bool {
	out := map[int32]bool{}
	for e := range a.kept {
		out[a.uf.find(e)] = true
	}
	return out
}

func (a *Analysis) freeze(l []int32, reason string) {
	for _, e := range l {
		if e >= 0 {
			a.freezeElem(e, reason)
		}
	}
}

func (a *Analysis) markInexact(l []int32, reason string) {
	for _, e := range l {
		if _, ok := a.inexct[e]; e >= 0 && !ok {
			a.inexct[e] = reason
		}
	}
}

func (a *Analysis) freezeValue(value, reason string) {
	for _, l := range a.labels[value] {
		a.freeze(l, reason)
	}
}

// freezeInputs freezes every labeled input of n (explicit and implicit).
func (a *Analysis) freezeInputs(n *graph.Node, reason string) {
	for _, in := range n.Proto.Input {
		a.freezeValue(in, reason)
	}
	for _, in := range n.Implicit {
		a.freezeValue(in, reason)
	}
}

func (a *Analysis) freezeNode(n *graph.Node, reason string) {
	a.freezeInputs(n, reason)
	for _, out := range n.Proto.Output {
		a.freezeValue(out, reason)
	}
}

// copyLabels gives out the labels of in, unchanged.
func (a *Analysis) copyLabels(in, out string) {
	for ax, l := range a.labels[in] {
		a.setLab(out, ax, l)
	}
}

// --- parameters and edits -----------------------------------------------

// constant returns the tensor behind name when it is a constant that may
// be edited.
func (a *Analysis) constant(name string) (*onnx.TensorProto, bool) {
	t, ok := a.g.Constant(name)
	if !ok {
		return nil, false
	}
	if v := a.g.Value(name); v != nil && v.IsOutput {
		return nil, false
	}
	return t, true
}

// addParam records that axis of the constant tensor behind name follows
// labels. It follows DequantizeLinear to its quantized constant. It
// reports false (and freezes the labels) when the tensor cannot be
// sliced.
func (a *Analysis) addParam(name string, axis int, labels []int32, kind string, node *graph.Node) bool {
	return a.addParamFacet(name, axis, labels, kind, node, "")
}

// addParamFacet is addParam for one of several label arrays on the same
// axis (paramKey.facet).
func (a *Analysis) addParamFacet(name string, axis int, labels []int32, kind string, node *graph.Node, facet string) bool {
	return a.addParamAt(name, slices.Index(node.Proto.Input, name), axis, labels, kind, node, facet)
}

// addParamAt is addParamFacet for the constant that node's input number
// input reads (-1: unknown), so that a node reading one filled constant on
// two inputs (BatchNormalization's zero bias and, through an Identity, its
// zero running mean) gets a private copy for each.
func (a *Analysis) addParamAt(name string, input, axis int, labels []int32, kind string, node *graph.Node, facet string) bool {
	if !anyLabel(labels) {
		return true
	}
	if p := a.g.Producer(name); p != nil && (p.Domain() == "" || p.Domain() == "com.microsoft") {
		switch {
		case p.Op() == "DequantizeLinear":
			return a.addDequantParam(p, axis, labels, kind, node)
		case p.Op() == "Identity" && p.Domain() == "":
			// Exporters alias shared parameters through Identity.
			return a.addParamAt(p.Input(0), input, axis, labels, kind, node, facet)
		}
	}
	t, ok := a.constant(name)
	if !ok {
		a.freeze(labels, fmt.Sprintf("%s: %q is not a constant", node.Name(), name))
		return false
	}
	if axis < 0 || axis >= len(t.Dims) || t.Dims[axis] != int64(len(labels)) {
		a.freeze(labels, fmt.Sprintf("%s: %q dims %v do not match %d channels on axis %d", node.Name(), name, t.Dims, len(labels), axis))
		return false
	}
	if graph.Bits(graph.DataTypeOf(t)) < 8 || graph.DataTypeOf(t) == onnx.TensorProto_STRING || graph.IsExternal(t) {
		a.freeze(labels, fmt.Sprintf("%s: %q cannot be sliced (%v)", node.Name(), name, graph.DataTypeOf(t)))
		return false
	}
	if a.opts.Ignore != nil && a.opts.Ignore.MatchString(name) {
		a.freeze(labels, "ignored")
	}
	k := paramKey{tensor: name, axis: axis, facet: facet}
	p := &param{key: k, kind: kind, node: node.Name(), labels: labels}
	if a.filled[name] {
		if i, ok := a.readerInput(node, name, input); ok {
			p.key.copy, p.reader, p.input = copyKey(name, node, i), node, i
			k = p.key
		}
	}
	if prev, ok := a.params[k]; ok {
		a.union(prev.labels, labels, "shared tensor "+name)
		return true
	}
	a.params[k] = p
	a.porder = append(a.porder, k)
	return true
}

// addDequantParam slices the quantized input of a DequantizeLinear that
// feeds a weight, and its per-axis scale and zero point.
func (a *Analysis) addDequantParam(dq *graph.Node, axis int, labels []int32, kind string, node *graph.Node) bool {
	x := dq.Input(0)
	if !a.addParam(x, axis, labels, kind, node) {
		return false
	}
	scale, ok := a.constant(dq.Input(1))
	if !ok {
		a.freeze(labels, dq.Name()+": scale is not a constant")
		return false
	}
	if len(scale.Dims) == 0 || (len(scale.Dims) == 1 && scale.Dims[0] == 1) {
		return true // per-tensor
	}
	xt, _ := a.constant(x)
	qaxis := int(dq.IntAttr("axis", 1))
	if xt != nil && qaxis < 0 {
		qaxis += len(xt.Dims)
	}
	if len(scale.Dims) != 1 || qaxis != axis {
		if len(scale.Dims) != 1 {
			a.freeze(labels, dq.Name()+": blocked quantization parameters")
			return false
		}
		return true // per-axis on another axis: untouched
	}
	ok = a.addParam(dq.Input(1), 0, labels, KindQParam, dq)
	if zp := dq.Input(2); zp != "" && ok {
		ok = a.addParam(zp, 0, labels, KindQParam, dq)
	}
	return ok
}

// --- groups ---------------------------------------------------------------

func (a *Analysis) buildGroups() {
	// Classes that share a dimension (or a parameter axis) form a group.
	var gu unionFind
	for i := 0; i < a.uf.len(); i++ {
		gu.add()
	}
	keep := a.keptClasses()
	link := func(l []int32) {
		first := int32(-1)
		for _, e := range l {
			if e < 0 || keep[a.uf.find(e)] {
				continue
			}
			r := a.uf.find(e)
			if first < 0 {
				first = r
			} else {
				gu.union(first, r)
			}
		}
	}
	values := a.sortedLabeledValues()
	for _, v := range values {
		for _, ax := range sortedAxes(a.labels[v]) {
			link(a.labels[v][ax])
		}
	}
	for _, k := range a.porder {
		link(a.params[k].labels)
	}
	byRoot := map[int32]*Group{}
	a.unitOf = map[int32]unitRef{}
	for e := int32(0); e < int32(a.uf.len()); e++ {
		cls := a.uf.find(e)
		if _, seen := a.unitOf[cls]; seen || keep[cls] {
			continue
		}
		gr := gu.find(cls)
		grp := byRoot[gr]
		if grp == nil {
			grp = &Group{ID: len(a.Groups), Name: a.origin[e]}
			byRoot[gr] = grp
			a.Groups = append(a.Groups, grp)
		}
		a.unitOf[cls] = unitRef{grp.ID, len(grp.units)}
		grp.units = append(grp.units, cls)
	}
	// Freeze and inexact reasons, earliest element first.
	for e := int32(0); e < int32(a.uf.len()); e++ {
		u, ok := a.unitOf[a.uf.find(e)]
		if !ok {
			continue
		}
		grp := a.Groups[u.group]
		if r, ok := a.frozen[e]; ok && !grp.Frozen {
			grp.Frozen, grp.Reason = true, r
		}
		if r, ok := a.inexct[e]; ok && grp.Inexact == "" {
			grp.Inexact = r
		}
	}
	for _, grp := range a.Groups {
		grp.Size = len(grp.units)
	}
	for _, v := range values {
		for _, ax := range sortedAxes(a.labels[v]) {
			if gid, ok := a.groupOf(a.labels[v][ax]); ok {
				a.Groups[gid].Dims = append(a.Groups[gid].Dims, DimRef{v, ax})
				a.Groups[gid].width = gcd(a.Groups[gid].width, a.positionsPerIndex(a.labels[v][ax]))
			}
		}
	}
	for _, e := range a.edits {
		if io, ok := e.(ioDim); ok {
			if gid, ok := a.groupOf(io.labels); ok && !a.Groups[gid].Frozen && !slices.Contains(a.Groups[gid].Interface, io.value) {
				a.Groups[gid].Interface = append(a.Groups[gid].Interface, io.value)
				slices.Sort(a.Groups[gid].Interface)
			}
		}
	}
	for _, k := range a.porder {
		p := a.params[k]
		gid, ok := a.groupOf(p.labels)
		if !ok {
			continue
		}
		m := Member{Tensor: k.tensor, Axis: k.axis, Kind: p.kind, Node: p.node, Map: a.indexMap(p.labels), Copy: k.copy != ""}
		if !m.Copy {
			m.SharedWith = a.sharedWith(k.tensor, p.node)
		}
		a.Groups[gid].Members = append(a.Groups[gid].Members, m)
	}
	// Groups with no parameter are bookkeeping only (for example the
	// channels of a graph input); they have nothing to prune.
	for _, grp := range a.Groups {
		if len(grp.Members) == 0 && !grp.Frozen {
			grp.Frozen, grp.Reason = true, "no parameters"
		}
	}
}

// positionsPerIndex returns the gcd of the number of positions of l that
// each index owns (1 for a channel axis, the block size for MatMulNBits
// input channels).
func (a *Analysis) positionsPerIndex(l []int32) int {
	count := map[int32]int{}
	for _, e := range l {
		if e >= 0 {
			count[a.uf.find(e)]++
		}
	}
	w := 0
	for _, c := range count {
		w = gcd(w, c)
	}
	return w
}

func gcd(x, y int) int {
	for y != 0 {
		x, y = y, x%y
	}
	return x
}

func (a *Analysis) groupOf(l []int32) (int, bool) {
	for _, e := range l {
		if e >= 0 {
			if u, ok := a.unitOf[a.uf.find(e)]; ok {
				return u.group, true
			}
		}
	}
	return 0, false
}

// indexMap converts labels to group indices (-1 for fixed positions).
func (a *Analysis) indexMap(l []int32) IndexMap {
	m := make(IndexMap, len(l))
	for i, e := range l {
		m[i] = -1
		if u, ok := a.unitOf[a.uf.find(max(e, 0))]; e >= 0 && ok {
			m[i] = u.index
		}
	}
	return m
}

func (a *Analysis) sortedLabeledValues() []string {
	// Deterministic: graph value order.
	var out []string
	for _, v := range a.g.Values() {
		if a.labels[v.Name] != nil {
			out = append(out, v.Name)
		}
	}
	return out
}

func sortedAxes(m map[int][]int32) []int {
	out := make([]int, 0, len(m))
	for ax := range m {
		out = append(out, ax)
	}
	sort.Ints(out)
	return out
}

// Prunable returns the groups that may be pruned.
func (a *Analysis) Prunable() []*Group {
	var out []*Group
	for _, g := range a.Groups {
		if !g.Frozen {
			out = append(out, g)
		}
	}
	return out
}

// OffsetConvs names the grouped convolutions whose input channels this
// analysis prunes by the same offset in every group, and which
// Options.ConvGroups would prune by whole groups instead: where the two
// analyses differ.
func (a *Analysis) OffsetConvs() []string { return a.offsetConvs }

// Graph returns the analysed graph.
func (a *Analysis) Graph() *graph.Graph { return a.g }

// unionFind is a union-find over element ids with path halving.
type unionFind struct{ parent []int32 }

func (u *unionFind) add() int32 {
	u.parent = append(u.parent, int32(len(u.parent)))
	return int32(len(u.parent) - 1)
}

func (u *unionFind) len() int { return len(u.parent) }

func (u *unionFind) find(x int32) int32 {
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

// union keeps the smaller id as root, so roots are deterministic.
func (u *unionFind) union(x, y int32) {
	x, y = u.find(x), u.find(y)
	if x == y {
		return
	}
	if y < x {
		x, y = y, x
	}
	u.parent[y] = x
}

// Options returns the options the analysis was made with, so that a copy
// of the model can be analysed into the same groups.
func (a *Analysis) Options() Options { return a.opts }
