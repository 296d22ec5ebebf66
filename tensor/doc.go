// Package tensor holds dense n-dimensional arrays and reads and writes them
// in NumPy's .npy and .npz formats.
//
// A Dense is a shape, an element type and a flat Go slice in C (row-major)
// order. Element types follow ONNX's TensorProto.DataType numbering so that
// they pass to onnxruntime unchanged; float16 and bfloat16 are kept as their
// raw bits in a []uint16.
//
// Files come from strangers: every size read from a header is checked for
// overflow and against the bytes that actually exist before anything is
// allocated, and a bad file gives an error naming it, never a panic.
// NpyFile reads rows of a large .npy with ReadAt so that datasets bigger
// than memory can be fed in batches.
package tensor
