// Package quant quantizes the weights (and, for static QDQ, the
// activations) of ONNX models and writes formats onnxruntime runs on CPU:
// QDQ int8 with calibration, dynamic int8 (MatMulInteger), weight-only
// MatMulNBits (com.microsoft) and QDQ int4 blocked (opset 21).
//
// The numerics live apart from the graph rewriting. A weight is viewed as
// a Matrix with one row per output channel and the reduction axis along
// the columns (a MatMul weight [K,N] becomes [N,K], a Conv weight
// [O,I,kh,kw] becomes [O, I·kh·kw]); a Scheme and a Granularity say how it
// is quantized, and RTN or GPTQ turn it into a Quantized matrix that one
// emitter per format packs into the graph.
//
// Rotation (random Hadamard, fused or online) and RSQ token weighting
// precede GPTQ; calibration statistics are gathered by running the float
// model in onnxruntime with intermediate tensors captured as outputs.
// docs/QUANT.md describes the formats and algorithms.
package quant
