// Package calib streams calibration data through onnxruntime and keeps
// only statistics: Gram matrices Σ x xᵀ of layer inputs (Conv inputs
// unfolded into patches), per-feature sums of squares, and per-channel
// moments. Stream is the one capture loop, for the pruning criteria
// (package importance) and quantization (package quant): its runs are
// sized to a byte budget, so memory does not grow with the number of
// samples. The pruning recovery steps (package prune) use its Runner.
package calib
