// Package grad builds a differentiable gorgonia expression graph from a
// pare graph, so that the pruning criteria and the recovery can use
// gradients of a loss with respect to the model's weights.
//
// Build translates one ONNX node at a time (a file per op family:
// conv.go, norm.go, elementwise.go, matmul.go, shape.go, pool.go,
// erf.go, groupconv.go, pad.go, resize.go, reduce.go) for a fixed
// batch size; integer shape computations
// (Shape, Gather, Concat of sizes, ...) are folded statically by
// graph.InferShapes and never enter the gorgonia graph. A node whose op
// has no rule makes Build fail with ErrUnsupported naming the op and the
// node. Values are float64 so that gradients can be checked against
// finite differences; weights are read from and written back to the
// model's float32 initializers.
package grad
