package prune

import "github.com/pare-dev/pare/graph"

// com.microsoft FastGelu and BiasGelu compute gelu(X + bias) with a bias
// over the last axis: for channel labels that is an Add of a constant
// followed by a pointwise function, so the elementwise rule applies as is
// (channels pass through, the bias is sliced with them).

func init() { registerMS(ruleFunc(analyzeElementwise), "FastGelu", "BiasGelu") }

// msRules are the rules for com.microsoft operators, by op type.
var msRules = map[string]rule{}

func registerMS(r rule, ops ...string) {
	for _, op := range ops {
		msRules[op] = r
	}
}

// msRule returns the rule of a com.microsoft node, if there is one.
func msRule(n *graph.Node) (rule, bool) {
	if n.Domain() != "com.microsoft" {
		return nil, false
	}
	r, ok := msRules[n.Op()]
	return r, ok
}
