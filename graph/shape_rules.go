package graph

// shapeRule sets a node's output shapes from its inputs. It returns an
// error only when known shapes contradict the operator.
type shapeRule func(c *nodeCtx) error

const msDomain = "com.microsoft"

// shapeRuleFor returns the rule for an operator, or nil (outputs
// unknown).
func shapeRuleFor(domain, op string) shapeRule {
	switch domain {
	case "":
		return shapeRules[op]
	case msDomain:
		return msShapeRules[op]
	}
	return nil
}

var shapeRules, msShapeRules map[string]shapeRule

func init() {
	shapeRules = map[string]shapeRule{
		// shape_conv.go
		"Conv": inferConv, "ConvInteger": inferConv, "QLinearConv": inferQLinearConv,
		"ConvTranspose": inferConvTranspose,
		"MaxPool":       inferPool, "AveragePool": inferPool, "LpPool": inferPool,
		"GlobalAveragePool": inferGlobalPool, "GlobalMaxPool": inferGlobalPool, "GlobalLpPool": inferGlobalPool,
		// shape_matmul.go
		"Gemm": inferGemm, "MatMul": inferMatMul, "MatMulInteger": inferMatMul,
		"QLinearMatMul": inferQLinearMatMul, "Einsum": inferEinsum,
		// shape_elementwise.go
		"Add": inferBroadcast, "Sub": inferBroadcast, "Mul": inferBroadcast, "Div": inferBroadcast,
		"Pow": inferBroadcast, "Max": inferBroadcast, "Min": inferBroadcast, "Sum": inferBroadcast,
		"Mean": inferBroadcast, "Mod": inferBroadcast, "BitShift": inferBroadcast, "PRelu": inferBroadcast,
		"BitwiseAnd": inferBroadcast, "BitwiseOr": inferBroadcast, "BitwiseXor": inferBroadcast,
		"Equal": inferCompare, "Less": inferCompare, "Greater": inferCompare,
		"LessOrEqual": inferCompare, "GreaterOrEqual": inferCompare,
		"And": inferCompare, "Or": inferCompare, "Xor": inferCompare,
		"Where": inferWhere, "Not": inferUnaryAs(boolType), "IsNaN": inferUnaryAs(boolType),
		"IsInf": inferUnaryAs(boolType), "Cast": inferCast, "CastLike": inferCastLike,
		"Dropout":            inferDropout,
		"BatchNormalization": inferSame, "InstanceNormalization": inferSame,
		"GroupNormalization": inferSame, "LayerNormalization": inferLayerNorm,
		"QuantizeLinear": inferQuantize, "DequantizeLinear": inferDequantize,
		"DynamicQuantizeLinear": inferDynamicQuantize,
		// shape_layout.go
		"Reshape": inferReshape, "Flatten": inferFlatten, "Squeeze": inferSqueeze,
		"Unsqueeze": inferUnsqueeze, "Transpose": inferTranspose, "Expand": inferExpand,
		"Concat": inferConcat, "Split": inferSplit, "Slice": inferSlice, "GatherND": inferGatherND, "Gather": inferGather,
		"GatherElements": inferSameAs(1), "Tile": inferTile, "Pad": inferPad,
		"DepthToSpace": inferDepthToSpace, "SpaceToDepth": inferSpaceToDepth,
		"Resize": inferResize, "Upsample": inferResize,
		// shape_reduce.go
		"ReduceMean": inferReduce, "ReduceSum": inferReduce, "ReduceMax": inferReduce,
		"ReduceMin": inferReduce, "ReduceProd": inferReduce, "ReduceL1": inferReduce,
		"ReduceL2": inferReduce, "ReduceLogSum": inferReduce, "ReduceLogSumExp": inferReduce,
		"ReduceSumSquare": inferReduce, "ArgMax": inferArg, "ArgMin": inferArg, "TopK": inferTopK,
		// shape_source.go
		"Constant": inferConstant, "Shape": inferShapeOp, "Size": inferSize,
		"ConstantOfShape": inferConstantOfShape, "Range": inferRange, "NonZero": inferNonZero,
		// shape_rnn.go
		"LSTM": inferRNN(4), "GRU": inferRNN(3), "RNN": inferRNN(1),
	}
	for _, op := range []string{"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Gelu",
		"Erf", "Tanh", "LeakyRelu", "Softplus", "Softsign", "Mish", "Sqrt", "Exp", "Log", "Neg",
		"Abs", "Reciprocal", "Softmax", "LogSoftmax", "Hardmax", "Identity", "Floor", "Ceil",
		"Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Elu",
		"Selu", "Celu", "ThresholdedRelu", "Shrink", "LRN", "MeanVarianceNormalization",
		"Trilu", "CumSum", "ScatterND", "ScatterElements", "Scatter", "BitwiseNot", "Swish",
		"RMSNormalization"} {
		shapeRules[op] = inferSame
	}
	msShapeRules = map[string]shapeRule{
		"MatMulNBits": inferMatMulNBits,
		"Gelu":        inferSame, "FastGelu": inferSame, "BiasGelu": inferSame, "QuickGelu": inferSame,
		"SkipLayerNormalization": inferSame, "SimplifiedLayerNormalization": inferSame,
		"SkipSimplifiedLayerNormalization": inferSame, "QuantizeLinear": inferQuantize,
		"DequantizeLinear": inferDequantize,
	}
}
