package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// FoldBatchNorm folds each inference BatchNormalization (with constant
// parameters that are not graph inputs) that is the only
// reader of a Conv with a constant weight into that Conv:
//
//	W' = W·γ/√(σ²+ε) per output channel,  b' = (b − μ)·γ/√(σ²+ε) + β
//
// so that static QDQ sees Conv → Q and onnxruntime can fuse it into an
// integer kernel. It returns the number of BatchNormalizations removed.
func FoldBatchNorm(m *graph.Model) (int, error) {
	gone := map[*onnx.NodeProto]bool{}
	var inits []*onnx.TensorProto
	for _, bn := range m.Graph.Nodes {
		if bn.Op() != "BatchNormalization" || bn.Domain() != "" || len(bn.Proto.Output) != 1 || bn.IntAttr("training_mode", 0) != 0 {
			continue
		}
		conv := m.Graph.Producer(bn.Input(0))
		if conv == nil || conv.Op() != "Conv" || conv.Domain() != "" || len(m.Graph.Consumers(bn.Input(0))) != 1 || m.Graph.Value(bn.Input(0)).IsOutput {
			continue
		}
		wt, ok := m.Graph.Constant(conv.Input(1))
		if !ok || graph.DataTypeOf(wt) != onnx.TensorProto_FLOAT || len(wt.Dims) < 3 {
			continue
		}
		params := make([][]float32, 4)
		ok = true
		for i := range params {
			t, isConst := constantThroughIdentity(m, bn.Input(i+1))
			if !isConst {
				ok = false
				break
			}
			v, err := graph.Float32s(t)
			if err != nil || len(v) != int(wt.Dims[0]) {
				ok = false
				break
			}
			params[i] = v
		}
		if !ok {
			continue
		}
		w, err := graph.Float32s(wt)
		if err != nil {
			continue
		}
		out := int(wt.Dims[0])
		bias := make([]float32, out)
		if b := conv.Input(2); b != "" {
			bt, isConst := constantThroughIdentity(m, b)
			if !isConst {
				continue
			}
			if bias, err = graph.Float32s(bt); err != nil || len(bias) != out {
				continue
			}
		}
		eps := float64(bn.FloatAttr("epsilon", 1e-5))
		gamma, beta, mean, variance := params[0], params[1], params[2], params[3]
		per := len(w) / out
		nb := make([]float32, out)
		for o := range out {
			f := float64(gamma[o]) / math.Sqrt(float64(variance[o])+eps)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return 0, fmt.Errorf("quant: batchnorm %s: %w: channel %d scale %v", bn, ErrInvalid, o, f)
			}
			for i := o * per; i < (o+1)*per; i++ {
				w[i] = float32(float64(w[i]) * f)
			}
			nb[o] = float32((float64(bias[o])-float64(mean[o]))*f + float64(beta[o]))
		}
		wName := uniqueName(m, conv.Input(1)+"_bn_folded")
		bName := uniqueName(m, conv.Output(0)+"_bn_bias")
		inits = append(inits, graph.FloatTensor(wName, wt.Dims, w), graph.FloatTensor(bName, []int64{int64(out)}, nb))
		conv.Proto.Input = append(conv.Proto.Input[:1], wName, bName)
		conv.Proto.Output[0] = bn.Output(0)
		gone[bn.Proto] = true
	}
	if len(gone) == 0 {
		return 0, nil
	}
	gp := m.Proto.Graph
	gp.Node = slices.DeleteFunc(gp.Node, func(n *onnx.NodeProto) bool { return gone[n] })
	gp.Initializer = append(gp.Initializer, inits...)
	dropUnusedInitializers(gp)
	if err := m.Graph.Reindex(); err != nil {
		return 0, fmt.Errorf("quant: batchnorm folding: %w", err)
	}
	return len(gone), nil
}

// constantThroughIdentity returns the constant value of name, following
// Identity nodes (exporters write shared parameters as Identity of one
// initializer).
func constantThroughIdentity(m *graph.Model, name string) (*onnx.TensorProto, bool) {
	for range 16 {
		if t, ok := m.Graph.Constant(name); ok {
			return t, true
		}
		p := m.Graph.Producer(name)
		if p == nil || p.Op() != "Identity" || p.Domain() != "" {
			return nil, false
		}
		name = p.Input(0)
	}
	return nil, false
}

// uniqueName returns base, or base with a numeric suffix, unused in m.
func uniqueName(m *graph.Model, base string) string {
	name := base
	for i := 1; m.Graph.Value(name) != nil; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}
