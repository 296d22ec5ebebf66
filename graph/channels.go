package graph

// A ChannelSet names the value axes that carry the same channels, in
// the same order: position p of every listed axis holds channel p.
//
// The pruning analysis finds them (its groups, prune.ChannelSets): which
// axes an op passes channels through is taught once, in prune's op
// rules. Transforms that must treat one channel axis alike wherever it
// flows, such as quant's fused rotation of a transformer's residual
// stream, take the sets as data instead of tracing channels themselves,
// so the layers below prune need not import it.
type ChannelSet struct {
	Channels int
	Axes     []ValueAxis
}

// ValueAxis is one axis of a value.
type ValueAxis struct {
	Value string
	Axis  int
}
