package prune

import "github.com/pare-dev/pare/graph"

// rule is how one operator family moves channel labels from its inputs to
// its outputs, which parameter slices follow them, which attributes or
// constants must be rewritten, and what static output shape results.
// Each op_*.go file implements one rule and registers it.
type rule interface {
	analyze(a *Analysis, n *graph.Node) error
}

var rules = map[string]rule{}

func register(r rule, ops ...string) {
	for _, op := range ops {
		rules[op] = r
	}
}

// ruleFunc adapts a function to rule.
type ruleFunc func(a *Analysis, n *graph.Node) error

func (f ruleFunc) analyze(a *Analysis, n *graph.Node) error { return f(a, n) }
