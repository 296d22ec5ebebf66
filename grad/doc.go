// Package grad builds a differentiable gorgonia expression graph from a
// pare graph, so that the pruning criteria and the recovery can use
// gradients of a loss with respect to the model's weights.
//
// Build translates one ONNX node at a time (a file per op family:
// conv.go, norm.go, elementwise.go, clamp.go, matmul.go, einsum.go,
// shape.go, concat.go, pool.go, erf.go, groupconv.go and convgemm.go,
// pad.go, resize.go, reduce.go, gather.go, embed.go, where.go) for a
// fixed input shape; integer values that
// depend only on shapes and constants (Shape, Gather, Concat of sizes;
// position ids from Range or CumSum; masks from Equal, Where, GatherND)
// never enter the gorgonia graph: graph.InferShapes folds the small
// ones and static.go evaluates the rest. Float values that depend on
// neither the input nor the weights (a decoder's rotary tables and
// causal mask: Cos, Sin, Trilu, ConstantOfShape, ScatterND) are
// evaluated once at build time (fold.go). A token-id input (a decoder)
// is held as float64 ids and looked up in a table by Embed, whose
// gradient scatters into the table's rows; a Gather at build-time
// indices is Take, a Where on a build-time condition Select. A node whose op has
// no rule makes Build fail with ErrUnsupported naming the op and the
// node. Values are float64 so that gradients can be checked against
// finite differences; weights are read from and written back to the
// model's float32 initializers.
package grad
