// Package calib streams calibration data through onnxruntime and keeps
// only statistics: Gram matrices Σ x xᵀ of layer inputs (Conv inputs
// unfolded into patches), per-feature sums of squares, and per-channel
// moments. It is shared by the pruning criteria (package importance) and
// the pruning recovery steps (package prune).
//
// It does not import package quant, whose Hessian collection is similar:
// quant imports importance (RSQ token weights), and importance and prune
// need these statistics, so the shared code lives below all three.
package calib
