package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// DepthToSpace and SpaceToDepth move channels in blocks of b². In
// DepthToSpace DCR mode input channel (k·C' + c) becomes output channel c
// for every block offset k, so the b² positions of c are coupled; in CRD
// mode channel (c·b² + k) does. SpaceToDepth gives output channel
// (k·C + c) the label of input channel c.

func init() {
	register(ruleFunc(analyzeDepthToSpace), "DepthToSpace")
	register(ruleFunc(analyzeSpaceToDepth), "SpaceToDepth")
}

func analyzeDepthToSpace(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	b := n.IntAttr("blocksize", 0)
	if len(xs) != 4 || b <= 0 || xs[1] < 0 || xs[1]%(b*b) != 0 {
		a.freezeInputs(n, n.Name()+": unknown shape or blocksize")
		return nil
	}
	bb := b * b
	c := xs[1] / bb
	out := []int64{xs[0], c, -1, -1}
	if xs[2] >= 0 {
		out[2] = xs[2] * b
	}
	if xs[3] >= 0 {
		out[3] = xs[3] * b
	}
	a.setShape(y, out)
	a.freezeOtherAxes(x, 1, n.Name()+": moved into space")
	l := a.lab(x)[1]
	if l == nil {
		return nil
	}
	crd := n.StringAttr("mode", "DCR") == "CRD"
	res := make([]int32, c)
	for i := int64(0); i < c; i++ {
		for k := int64(0); k < bb; k++ {
			p := k*c + i
			if crd {
				p = i*bb + k
			}
			if k == 0 {
				res[i] = l[p]
			} else {
				a.union(res[i:i+1], l[p:p+1], n.Name())
			}
		}
	}
	a.setLab(y, 1, res)
	return nil
}

func analyzeSpaceToDepth(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	b := n.IntAttr("blocksize", 0)
	if len(xs) != 4 || b <= 0 || xs[1] < 0 {
		a.freezeInputs(n, n.Name()+": unknown shape or blocksize")
		return nil
	}
	if (xs[2] >= 0 && xs[2]%b != 0) || (xs[3] >= 0 && xs[3]%b != 0) {
		return fmt.Errorf("%w: spatial dims not divisible by blocksize", graph.ErrInvalidModel)
	}
	out := []int64{xs[0], xs[1] * b * b, -1, -1}
	if xs[2] >= 0 {
		out[2] = xs[2] / b
	}
	if xs[3] >= 0 {
		out[3] = xs[3] / b
	}
	a.setShape(y, out)
	a.freezeOtherAxes(x, 1, n.Name()+": moved into depth")
	l := a.lab(x)[1]
	if l == nil {
		return nil
	}
	res := make([]int32, 0, out[1])
	for range b * b {
		res = append(res, l...)
	}
	a.setLab(y, 1, res)
	return nil
}
