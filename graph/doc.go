// Package graph loads ONNX models into an indexed dependency graph and
// writes them back.
//
// The protobuf message (package onnx) stays the single source of truth:
// Model, Graph, Node and Value are indexes over it (producer and consumers
// of every value, initializers, graph inputs and outputs), rebuilt with
// Graph.Reindex after the protobuf is edited. Loading resolves external
// data safely under the model's folder; saving is atomic and gives
// byte-identical files for identical models.
package graph
