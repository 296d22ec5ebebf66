// Package grad builds a differentiable gorgonia expression graph from a
// pare graph, so that the pruning criteria and the recovery can use
// gradients of a loss with respect to the model's weights.
//
// Build translates one ONNX node at a time (a file per op family:
// conv.go, norm.go, elementwise.go, matmul.go, shape.go, pool.go,
// erf.go, groupconv.go, pad.go, resize.go, reduce.go, gather.go,
// embed.go) for a fixed input shape; integer shape computations
// (Shape, Gather, Concat of sizes, ...) are folded statically by
// graph.InferShapes and never enter the gorgonia graph, and float
// values that depend on neither the input nor the weights (a decoder's
// rotary tables and causal mask: Cos, Sin, Trilu, ConstantOfShape) are
// evaluated once at build time (fold.go). A token-id input (a decoder)
// is held as float64 ids and looked up in the embedding table by Embed,
// whose gradient scatters into the table's rows. A node whose op has
// no rule makes Build fail with ErrUnsupported naming the op and the
// node. Values are float64 so that gradients can be checked against
// finite differences; weights are read from and written back to the
// model's float32 initializers.
package grad
