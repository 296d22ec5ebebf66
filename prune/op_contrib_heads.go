package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// Shared pieces of the com.microsoft attention rules (Attention,
// MultiHeadAttention, GroupQueryAttention, RotaryEmbedding). These
// operators take the heads packed on the last axis, [batch, seq, H·D],
// and split them internally, so the rule creates one element per head
// (or per KV group, or per query slot) and couples every position of a
// head with it: head h of Q, K and V and of the output become one index.
// Whole heads go; head_dim, the default 1/√head_dim scale and rotary
// caches stay valid. The head-count attributes are rewritten from the
// kept heads.

// spread repeats each unit size times: the positions of [units·size].
func spread(units []int32, size int) []int32 {
	out := make([]int32, 0, len(units)*size)
	for _, u := range units {
		for range size {
			out = append(out, u)
		}
	}
	return out
}

// bindHeads couples the positions of l, heads of size positions each,
// with units (one per head). An input whose channels are fixed (nil l, a
// graph input) freezes the units: its heads cannot be removed.
func (a *Analysis) bindHeads(l, units []int32, size int, why string) {
	want := spread(units, size)
	switch {
	case l == nil:
		a.freeze(units, why+": channels of this input are fixed")
	case len(l) != len(want):
		a.freeze(units, fmt.Sprintf("%s: %d channels, not %d heads of %d", why, len(l), len(units), size))
		a.freeze(l, why+": channels do not match the heads")
	default:
		a.union(l, want, why)
	}
}

// lastAxisLabels returns the labels of v's last axis and freezes labels on
// any other axis (batch and sequence axes carry no channels here).
func (a *Analysis) lastAxisLabels(v string, rank int, why string) []int32 {
	var last []int32
	for ax, l := range a.lab(v) {
		if ax == rank-1 {
			last = l
			continue
		}
		a.freeze(l, why+": channels on a batch or sequence axis")
	}
	return last
}

// used reports whether an optional output is read or is a graph output.
func (a *Analysis) used(n *graph.Node, i int) bool {
	name := n.Output(i)
	if name == "" {
		return false
	}
	v := a.g.Value(name)
	return v != nil && (v.IsOutput || len(v.Consumers) > 0)
}

// headBias handles an optional attention bias added to Q·Kᵀ, shape
// [batch or 1, heads or 1, seq, total]: a constant one is sliced on its
// head axis; a computed one with a head axis freezes the heads.
func (a *Analysis) headBias(n *graph.Node, input int, units []int32, why string) {
	b := n.Input(input)
	if b == "" {
		return
	}
	s := a.shape(b)
	switch {
	case len(s) == 4 && s[1] == 1:
	case len(s) == 4 && s[1] == int64(len(units)) && a.isFloatConst(b):
		a.addParam(b, 1, units, KindConst, n)
	default:
		a.freeze(units, why+": attention_bias "+b+" has a head axis pare cannot slice")
	}
}

// keptAttr rewrites an int attribute to per × the kept positions of
// labels (num_heads, kv_num_heads, MatMulNBits N and K).
type keptAttr struct {
	node   *graph.Node
	name   string
	labels []int32
	per    int64
}

func (e keptAttr) apply(ap *applier) error {
	e.node.SetIntAttr(e.name, e.per*int64(countTrue(ap.kept(e.labels))))
	return nil
}

// keptInts rewrites an ints attribute entry by entry (Attention's
// qkv_hidden_sizes): entry i is per[i] × the kept positions of labels[i].
type keptInts struct {
	node   *graph.Node
	name   string
	labels [][]int32
	per    []int64
}

func (e keptInts) apply(ap *applier) error {
	v := make([]int64, len(e.labels))
	for i, l := range e.labels {
		v[i] = e.per[i] * int64(countTrue(ap.kept(l)))
	}
	e.node.SetIntsAttr(e.name, v)
	return nil
}

// headsBlocked returns why the heads of a com.microsoft attention node
// cannot be pruned whatever the graph around it, "" when they can: a
// past/present cache carries the head axis; Options.HeadDim asks for
// head_dim, which these operators do not expose.
func (a *Analysis) headsBlocked(n *graph.Node, past []int, present []int) string {
	if a.opts.HeadDim {
		return n.Name() + ": head_dim of com.microsoft " + n.Op() + " is not pruned (whole heads are)"
	}
	for _, i := range past {
		if n.Input(i) != "" {
			return n.Name() + ": the past state " + n.Input(i) + " has the head axis"
		}
	}
	for _, i := range present {
		if a.used(n, i) {
			return n.Name() + ": the present state " + n.Output(i) + " has the head axis"
		}
	}
	return ""
}

// attentionCache labels the head axis (axis 1 of [batch, heads, seq,
// D], axis 2 of Attention's packed [2, batch, heads, seq, D]) of an
// attention operator's past inputs and present outputs with units, one
// per head or KV group, or says why the heads cannot be removed from
// them: a past must be a graph input read by this node alone, and
// --keep-interface keeps every cache whole (iface.go).
func (a *Analysis) attentionCache(n *graph.Node, past, present []int, axis int, units []int32) string {
	for _, i := range past {
		if p := n.Input(i); p != "" && !a.cacheInput(p, axis, units, n) {
			why := "is not a graph input read by this node alone"
			if a.opts.KeepInterface {
				why = "is part of the model's interface (--keep-interface)"
			}
			return fmt.Sprintf("%s: the past state %s %v has the head axis and %s", n.Name(), p, a.shape(p), why)
		}
	}
	for _, i := range present {
		if !a.used(n, i) {
			continue
		}
		if p := n.Output(i); a.opts.KeepInterface && a.g.Value(p).IsOutput {
			return fmt.Sprintf("%s: the present state %s has the head axis and is part of the model's interface (--keep-interface)", n.Name(), p)
		}
		a.cacheOutput(n.Output(i), axis, units)
	}
	return ""
}
