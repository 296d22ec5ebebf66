package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// SortTopologically reorders gp.Node so that every node comes after the
// producers of its inputs, keeping the existing order where it already
// holds. It fails on a cycle, naming a node on it.
func SortTopologically(gp *onnx.GraphProto) error {
	// A value defined twice would make the order ambiguous (and be
	// reported as a bogus cycle), so it is refused here, naming it.
	outer := make(map[string]bool, len(gp.Input)+len(gp.Initializer))
	for _, in := range gp.Input {
		outer[in.GetName()] = true
	}
	for _, t := range gp.Initializer {
		outer[t.GetName()] = true
	}
	for _, st := range gp.SparseInitializer {
		outer[st.GetValues().GetName()] = true
	}
	producer := make(map[string]int, len(gp.Node))
	for i, n := range gp.Node {
		for _, o := range n.Output {
			if o == "" {
				continue
			}
			if p, dup := producer[o]; dup {
				return fmt.Errorf("graph: %w: value %q is defined twice (nodes %q and %q)", ErrInvalidModel,
					o, gp.Node[p].GetName(), n.GetName())
			}
			if outer[o] {
				return fmt.Errorf("graph: %w: value %q is defined twice (node %q and a graph input or initializer)",
					ErrInvalidModel, o, n.GetName())
			}
			producer[o] = i
		}
	}
	deps := make([][]int, len(gp.Node))
	for i, n := range gp.Node {
		reads := append(append([]string{}, n.Input...), implicitInputs(n)...)
		for _, in := range reads {
			if p, ok := producer[in]; ok && in != "" {
				deps[i] = append(deps[i], p)
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, len(gp.Node))
	order := make([]*onnx.NodeProto, 0, len(gp.Node))
	// Iterative depth-first search: graphs with very long chains must not
	// exhaust the stack.
	type frame struct{ node, next int }
	for root := range gp.Node {
		if state[root] != unvisited {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(deps[top.node]) {
				d := deps[top.node][top.next]
				top.next++
				switch state[d] {
				case visiting:
					return fmt.Errorf("graph: %w: cycle through node %q (%s)", ErrInvalidModel,
						gp.Node[d].GetName(), gp.Node[d].GetOpType())
				case unvisited:
					state[d] = visiting
					stack = append(stack, frame{d, 0})
				}
				continue
			}
			state[top.node] = done
			order = append(order, gp.Node[top.node])
			stack = stack[:len(stack)-1]
		}
	}
	copy(gp.Node, order)
	return nil
}
