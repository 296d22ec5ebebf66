package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Conv"] = conv }

// conv translates a 2-D Conv. gorgonia's Conv2d has no groups, so a
// grouped conv is one Conv2d per group over slices of the input
// channels and filters, concatenated along channels.
func conv(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	w, err := t.in(n, 1)
	if err != nil {
		return err
	}
	if x.Dims() != 4 || w.Dims() != 4 {
		return fmt.Errorf("%w: only 2-D convolutions", ErrUnsupported)
	}
	if ap := n.StringAttr("auto_pad", "NOTSET"); ap != "NOTSET" {
		return fmt.Errorf("%w: auto_pad %s", ErrUnsupported, ap)
	}
	kernel := tensor.Shape{w.Shape()[2], w.Shape()[3]}
	pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
	if len(pads) != 4 || pads[0] != pads[2] || pads[1] != pads[3] {
		return fmt.Errorf("%w: asymmetric pads %v", ErrUnsupported, pads)
	}
	pad := []int{int(pads[0]), int(pads[1])}
	stride := ints(n.IntsAttr("strides", []int64{1, 1}))
	dil := ints(n.IntsAttr("dilations", []int64{1, 1}))
	groups := int(n.IntAttr("group", 1))
	var y *G.Node
	if groups == 1 {
		y, err = G.Conv2d(x, w, kernel, pad, stride, dil)
	} else {
		y, err = groupedConv(x, w, groups, kernel, pad, stride, dil)
	}
	if err != nil {
		return err
	}
	if b := n.Input(2); b != "" {
		bias, err := t.value(b)
		if err != nil {
			return err
		}
		if y, err = addChannel(y, bias); err != nil {
			return err
		}
	}
	t.set(n, 0, y)
	return nil
}

func groupedConv(x, w *G.Node, groups int, kernel tensor.Shape, pad, stride, dil []int) (*G.Node, error) {
	cin, cout := x.Shape()[1], w.Shape()[0]
	if cin%groups != 0 || cout%groups != 0 {
		return nil, fmt.Errorf("%w: %d groups over %d→%d channels", ErrUnsupported, groups, cin, cout)
	}
	ci, co := cin/groups, cout/groups
	parts := make([]*G.Node, groups)
	for g := range groups {
		// gorgonia's Slice drops an axis sliced to one element: reshape
		// back to 4-D.
		xs, err := G.Slice(x, nil, G.S(g*ci, (g+1)*ci))
		if err != nil {
			return nil, err
		}
		xsh := x.Shape()
		if xs, err = G.Reshape(xs, []int{xsh[0], ci, xsh[2], xsh[3]}); err != nil {
			return nil, err
		}
		ws, err := G.Slice(w, G.S(g*co, (g+1)*co))
		if err != nil {
			return nil, err
		}
		wsh := w.Shape()
		if ws, err = G.Reshape(ws, []int{co, wsh[1], wsh[2], wsh[3]}); err != nil {
			return nil, err
		}
		if parts[g], err = G.Conv2d(xs, ws, kernel, pad, stride, dil); err != nil {
			return nil, err
		}
	}
	return G.Concat(1, parts...)
}

// addChannel adds a per-channel vector to an NCHW (or NC…) tensor.
func addChannel(y, v *G.Node) (*G.Node, error) {
	return broadcast(y, channelShaped(y, v), G.Add, G.BroadcastAdd)
}

// mulChannel multiplies an NCHW tensor by a per-channel vector.
func mulChannel(y, v *G.Node) (*G.Node, error) {
	return broadcast(y, channelShaped(y, v), G.HadamardProd, G.BroadcastHadamardProd)
}

// channelShaped reshapes a length-C vector to (1, C, 1, …) for y's rank.
func channelShaped(y, v *G.Node) *G.Node {
	to := make([]int, y.Dims())
	for i := range to {
		to[i] = 1
	}
	to[1] = v.Shape().TotalSize()
	r, err := G.Reshape(v, to)
	if err != nil {
		return v
	}
	return r
}
