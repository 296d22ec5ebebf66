package prune

import "github.com/pare-dev/pare/graph"

// com.microsoft SkipLayerNormalization, SkipSimplifiedLayerNormalization
// and SimplifiedLayerNormalization normalise over the last axis with
// gamma (beta, bias) and, for the Skip forms, add a residual first. Their
// output keeps the input's shape; the channels they normalise (the
// hidden width) freeze here, naming the node, while groups elsewhere
// (MLP widths behind them) keep their shapes known and stay prunable.

func init() {
	registerMS(ruleFunc(analyzeContribNorm),
		"SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization")
	// onnxruntime registers SimplifiedLayerNormalization in the default
	// domain, and its optimizer writes it there.
	register(ruleFunc(analyzeContribNorm), "SimplifiedLayerNormalization")
}

func analyzeContribNorm(a *Analysis, n *graph.Node) error {
	xs := a.shape(n.Input(0))
	// Optional mean/inv_std outputs have other shapes; only the first and
	// the Skip forms' input+skip sum (output 3) keep the input's.
	a.setShape(n.Output(0), xs)
	if len(n.Proto.Output) > 3 {
		a.setShape(n.Output(3), xs)
	}
	a.freezeNode(n, n.Name()+": "+n.Op()+" over the hidden width is not rewritten")
	return nil
}
