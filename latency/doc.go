// Package latency gives `pare prune --target latency` its cost model: the
// latency, in onnxruntime on this machine, of every weighted layer of a
// model (Conv, ConvTranspose, Gemm, MatMul with a constant weight) at a
// grid of reduced widths, each measured once on a one-node model of the
// layer's shape and cached under the user cache directory, plus the
// latency of the rest of the model (whole model minus its layers). As
// ZipLM and Puzzle do, a candidate's latency is then looked up, not
// measured: prune.Select budgets the sum (prune/latency.go).
package latency
