package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// com.microsoft GroupQueryAttention: query [batch, seq, H·D], key and
// value [batch, seq, Hkv·D] (or one packed input [batch, seq,
// (H + 2·Hkv)·D] with key and value empty); query head h reads KV head
// h / (H/Hkv), so KV group g is KV head g with query heads
// g·rep … g·rep+rep−1. The two modes of docs/PRUNING.md:
//
//   - --kv-groups (Options.KVGroups): an index is a whole KV group, its
//     key and value heads and its rep query heads; num_heads and
//     kv_num_heads are rewritten (rep is unchanged). A past/present KV
//     cache [batch, Hkv, seq, D] carries the KV head axis: when the past
//     is a graph input read by this node alone it is sliced with the
//     groups, as are the present outputs (iface.go); otherwise the
//     groups freeze;
//   - --heads: every KV head stays and an index is query slot j, the
//     j-th query head of every KV group, so each group loses the same
//     query heads; num_heads becomes Hkv × kept slots. The key/value
//     projections keep every channel (frozen, or, packed with the query,
//     kept positions of the same tensor).
//
// Output channels follow the query heads. A constant attention_bias and
// head_sink are sliced on their query-head axis; the qk output, KV-cache
// quantization scales and --head-dim freeze, naming the node. Rotary
// (do_rotary, cos/sin caches) and q/k norms work per head over head_dim
// and need nothing.

func init() { registerMS(ruleFunc(analyzeContribGQA), "GroupQueryAttention") }

func analyzeContribGQA(a *Analysis, n *graph.Node) error {
	q, k, v, y := n.Input(0), n.Input(1), n.Input(2), n.Output(0)
	qs := a.shape(q)
	heads, kvHeads := n.IntAttr("num_heads", 0), n.IntAttr("kv_num_heads", 0)
	packed := k == "" && v == ""
	width := heads
	if packed {
		width = heads + 2*kvHeads
	}
	var d int64
	if len(qs) == 3 && width > 0 && qs[2] > 0 && qs[2]%width == 0 {
		d = qs[2] / width
		a.setShape(y, []int64{qs[0], qs[1], heads * d})
	}
	why := ""
	switch {
	case heads <= 0 || kvHeads <= 0 || heads%kvHeads != 0:
		why = fmt.Sprintf("num_heads %d, kv_num_heads %d", heads, kvHeads)
	case d == 0:
		why = fmt.Sprintf("query %v does not split into heads", qs)
	case !packed && (!sameDims(a.shape(k), []int64{-2, -2, kvHeads * d}) || !sameDims(a.shape(v), []int64{-2, -2, kvHeads * d})):
		why = fmt.Sprintf("key %v or value %v not of %d heads of %d", a.shape(k), a.shape(v), kvHeads, d)
	}
	if why != "" {
		a.freezeNode(n, n.Name()+": GroupQueryAttention with "+why)
		return nil
	}
	rep := heads / kvHeads
	name := n.Name()
	var units, qUnits, kvUnits []int32
	var attr []keptAttr
	var blocked string
	if a.opts.KVGroups {
		units = a.newElems(int(kvHeads), name)
		kvUnits = units
		for h := range heads {
			qUnits = append(qUnits, units[h/rep])
		}
		for _, e := range units {
			a.markRole(e, roleKVGroup)
		}
		blocked = a.headsBlocked(n, []int{12, 13}, []int{3})
		if blocked == "" {
			blocked = a.attentionCache(n, []int{3, 4}, []int{1, 2}, 1, units)
		}
		attr = []keptAttr{{n, "num_heads", units, rep}, {n, "kv_num_heads", units, 1}}
	} else {
		units = a.newElems(int(rep), name)
		for h := range heads {
			qUnits = append(qUnits, units[h%rep])
		}
		a.mark(units, "head")
		blocked = a.headsBlocked(n, nil, []int{3})
		attr = []keptAttr{{n, "num_heads", units, kvHeads}}
	}
	if blocked != "" {
		a.freeze(units, blocked)
	}
	dd := int(d)
	keepKV := name + ": key/value heads are kept by --heads (--kv-groups removes whole KV groups)"
	if packed {
		l := a.lastAxisLabels(q, 3, name)
		qw, kvw := int(heads*d), int(kvHeads*d)
		if l == nil {
			a.freeze(units, name+": packed QKV channels are fixed")
		} else {
			a.bindHeads(l[:qw], qUnits, dd, name+": query")
			if kvUnits != nil {
				a.bindHeads(l[qw:qw+kvw], kvUnits, dd, name+": key")
				a.bindHeads(l[qw+kvw:], kvUnits, dd, name+": value")
			} else {
				a.keepElems(l[qw:], keepKV)
			}
		}
	} else {
		a.bindHeads(a.lastAxisLabels(q, 3, name), qUnits, dd, name+": query")
		kl, vl := a.lastAxisLabels(k, 3, name), a.lastAxisLabels(v, 3, name)
		if kvUnits != nil {
			a.bindHeads(kl, kvUnits, dd, name+": key")
			a.bindHeads(vl, kvUnits, dd, name+": value")
		} else {
			a.freeze(kl, keepKV)
			a.freeze(vl, keepKV)
		}
	}
	a.headBias(n, 10, qUnits, name)
	if sink := n.Input(11); sink != "" {
		if !a.isFloatConst(sink) {
			a.freeze(units, name+": head_sink "+sink+" is computed")
		} else {
			a.addParam(sink, 0, qUnits, KindConst, n)
		}
	}
	a.setLab(y, 2, spread(qUnits, dd))
	for _, e := range attr {
		a.edits = append(a.edits, e)
	}
	return nil
}

// sameDims reports whether s matches want, -2 in want matching any dim.
func sameDims(s, want []int64) bool {
	if len(s) != len(want) {
		return false
	}
	for i := range s {
		if want[i] != -2 && s[i] != want[i] {
			return false
		}
	}
	return true
}
