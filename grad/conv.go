package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Conv"] = conv }

// conv translates a 2-D Conv to GroupConv (grad's own op; a plain conv
// is one group), which multiplies in the model's [N, C, H, W] order
// where gorgonia's Conv2d transposes its product (convgemm.go).
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
	pads := n.IntsAttr("pads", []int64{0, 0, 0, 0})
	if len(pads) != 4 || pads[0] != pads[2] || pads[1] != pads[3] {
		return fmt.Errorf("%w: asymmetric pads %v", ErrUnsupported, pads)
	}
	pad := []int{int(pads[0]), int(pads[1])}
	stride := ints(n.IntsAttr("strides", []int64{1, 1}))
	dil := ints(n.IntsAttr("dilations", []int64{1, 1}))
	groups := int(n.IntAttr("group", 1))
	y, err := GroupConv(x, w, groups, pad, stride, dil)
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
