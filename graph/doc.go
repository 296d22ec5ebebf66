// Package graph loads ONNX models into an indexed dependency graph and
// writes them back.
//
// The protobuf message (package onnx) stays the single source of truth:
// Model, Graph, Node and Value are indexes over it (producer and consumers
// of every value, initializers, graph inputs and outputs), rebuilt with
// Graph.Reindex after the protobuf is edited. Loading resolves external
// data safely under the model's folder; saving is atomic and gives
// byte-identical files for identical models.
//
// Beside the indexes the package knows tensors (decode and encode of every
// element type, sub-byte packing), static shapes (InferShapes, with
// symbolic dims and constant-folded shape computations), parameter and
// MAC counts (Count; the convention is in docs/COUNTING.md), summaries for
// `pare inspect`, and the invariants every written model must satisfy
// (CheckInvariants).
package graph
