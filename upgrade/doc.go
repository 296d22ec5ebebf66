// Package upgrade raises the default-domain (ai.onnx) opset of a model,
// rewriting the nodes whose signature or meaning changed on the way: an
// attribute that became an input (Squeeze/Unsqueeze/Split/Reduce* axes,
// Clip bounds, Pad pads, Slice starts/ends, TopK k, Dropout ratio),
// Upsample replaced by Resize, Resize's coordinate defaults, the
// coerced-to-2-D axis of Softmax/LogSoftmax/Hardmax before 13, and the
// attributes BatchNormalization, RoiAlign and GridSample lost or renamed.
// Each op family has its own file; a node it cannot carry over exactly is
// refused with its name and op, and the model is left unchanged.
//
// The rules follow the ONNX operator changelog from opset 7 to 21.
package upgrade
