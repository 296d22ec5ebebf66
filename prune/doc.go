// Package prune removes coupled channels from ONNX graphs.
//
// Analysis tracks channel dimensions, not nodes. Every tracked axis of a
// value carries one label per position; a label is a channel element.
// Operators with parameters (Conv, Gemm, MatMul with a constant operand)
// create fresh elements for their output channels, and per-op rules (one
// file per operator family, op_*.go) say how labels flow from inputs to
// outputs: unchanged (activations, pooling), merged position by position
// (residual Add, broadcast Mul), concatenated or cut (Concat, Split,
// Slice), expanded into blocks (Flatten, Reshape) or permuted (Transpose,
// channel shuffle, DepthToSpace). Position-wise coupling is a union-find
// over elements: an equivalence class is one prunable channel, an index of
// its group. Classes that share a dimension form a Group, whose index
// space is the list of its classes; each member parameter slice (weight
// axis, bias, normalisation parameters, broadcast constants, Q/DQ
// parameters) keeps an index map from its positions to the group's
// indices.
//
// A group is frozen, with a reason, when a channel reaches a graph output,
// an operator without a rule, a reduction that is not a known
// normalisation, a shape that cannot be rewritten, a custom-domain
// operator or a subgraph. Frozen groups are never pruned.
//
// A Plan lists, for each group, its members and the kept indices; Apply
// slices the member tensors, rewrites the attributes and shape constants
// recorded during analysis, drops stale value_info and reindexes the
// graph. Selection (local or global, channel, parameter or MAC targets,
// minimum keep, rounding) turns per-index scores from package importance
// into a Plan.
package prune
