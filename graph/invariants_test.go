package graph_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// qdqProto is a valid per-axis weight DequantizeLinear feeding a MatMul,
// and a per-tensor QuantizeLinear on the activation: W (int8 [4, 3]) with
// scale and zero point of 3 entries on axis 1.
func qdqProto() *onnx.ModelProto {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4)
	b.InitTensor(graph.NewTensor("W", onnx.TensorProto_INT8, []int64{4, 3}, make([]byte, 12)))
	b.Init("W_scale", []int64{3}, []float32{0.1, 0.2, 0.3})
	b.InitTensor(graph.NewTensor("W_zp", onnx.TensorProto_INT8, []int64{3}, make([]byte, 3)))
	w := b.Node("DequantizeLinear", []string{"W", "W_scale", "W_zp"}, build.Int("axis", 1))
	b.Init("x_scale", nil, []float32{0.05})
	q := b.Node("QuantizeLinear", []string{x, "x_scale"})
	dq := b.Node("DequantizeLinear", []string{q, "x_scale"})
	y := b.Node("MatMul", []string{dq, w})
	b.Output(y, onnx.TensorProto_FLOAT, 1, 3)
	return b.Model
}

// nbitsProto is a valid MatMulNBits: K=64, N=8, bits=4, block_size=32, so
// B is [8, 2, 16], scales 16 values, packed uint8 zero points 8 × 1.
func nbitsProto() *onnx.ModelProto {
	b := build.New(17).Import("com.microsoft", 1)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 64)
	b.InitTensor(graph.NewTensor("B", onnx.TensorProto_UINT8, []int64{8, 2, 16}, make([]byte, 256)))
	b.Init("scales", []int64{16}, make([]float32, 16))
	b.InitTensor(graph.NewTensor("zp", onnx.TensorProto_UINT8, []int64{8}, make([]byte, 8)))
	b.Init("bias", []int64{8}, make([]float32, 8))
	y := b.Node("MatMulNBits", []string{x, "B", "scales", "zp", "", "bias"},
		build.Int("K", 64), build.Int("N", 8), build.Int("bits", 4), build.Int("block_size", 32))
	b.Last().Domain = proto.String("com.microsoft")
	b.Output(y, onnx.TensorProto_FLOAT, 1, 8)
	return b.Model
}

// blockedProto is a valid blocked DequantizeLinear (opset 21): W int4
// [64, 8] with block_size 32 on axis 0, so scales are [2, 8].
func blockedProto() *onnx.ModelProto {
	b := build.New(21)
	b.Model.IrVersion = proto.Int64(10)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 64)
	b.InitTensor(graph.NewTensor("W", onnx.TensorProto_INT4, []int64{64, 8}, make([]byte, 256)))
	b.Init("W_scale", []int64{2, 8}, make([]float32, 16))
	w := b.Node("DequantizeLinear", []string{"W", "W_scale"}, build.Int("axis", 0), build.Int("block_size", 32))
	y := b.Node("MatMul", []string{x, w})
	b.Output(y, onnx.TensorProto_FLOAT, 1, 8)
	return b.Model
}

func TestInvariantsHoldOnValidModels(t *testing.T) {
	for name, mp := range map[string]*onnx.ModelProto{
		"base": baseProto(), "qdq": qdqProto(), "nbits": nbitsProto(), "blocked": blockedProto(),
		"nested If": nestedIfModel(5),
	} {
		if err := graph.CheckInvariants(&graph.Model{Proto: mp}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every fixture, as loaded and as re-saved, satisfies the invariants.
func TestInvariantsHoldOnFixtures(t *testing.T) {
	for _, f := range fixtureManifest(t) {
		m, err := graph.Load(filepath.Join("..", "fixtures", f.Path))
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if err := graph.CheckInvariants(m); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
}

func TestInvariantViolations(t *testing.T) {
	str := proto.String
	type edit = func(mp *onnx.ModelProto)
	cases := []struct {
		name  string
		base  func() *onnx.ModelProto
		edit  edit
		parts []string
	}{
		{"no ir_version", baseProto, func(mp *onnx.ModelProto) { mp.IrVersion = nil }, []string{"ir_version"}},
		{"no opset import", baseProto, func(mp *onnx.ModelProto) { mp.OpsetImport = nil }, []string{"opset_import"}},
		{"ir_version too old for opset", baseProto, func(mp *onnx.ModelProto) { mp.IrVersion = proto.Int64(6) }, []string{"ir_version 6", "opset 13", "needs 7"}},
		{"opset version 0", baseProto, func(mp *onnx.ModelProto) { mp.OpsetImport[0].Version = proto.Int64(0) }, []string{"version 0"}},
		{"domain not imported", nbitsProto, func(mp *onnx.ModelProto) { mp.OpsetImport = mp.OpsetImport[:1] }, []string{"MatMulNBits", "com.microsoft"}},
		{"not topologically sorted", baseProto, func(mp *onnx.ModelProto) {
			n := mp.Graph.Node
			n[0], n[2] = n[2], n[0]
		}, []string{"Relu_3", "before it is produced", "topological"}},
		{"subgraph not sorted", func() *onnx.ModelProto { return nestedIfModel(2) }, func(mp *onnx.ModelProto) {
			sub := mp.Graph.Node[0].Attribute[0].G
			sub.Node = append(sub.Node, &onnx.NodeProto{OpType: str("Relu"), Name: str("late"), Input: []string{"z"}, Output: []string{"w2"}})
			sub.Node = append([]*onnx.NodeProto{{OpType: str("Relu"), Name: str("early"), Input: []string{"w2"}, Output: []string{"z2"}}}, sub.Node...)
		}, []string{"then_branch", `"early"`, "before it is produced"}},
		{"reads nothing", baseProto, func(mp *onnx.ModelProto) { mp.Graph.Node[1].Input[0] = "ghost" }, []string{`"ghost"`, "nothing produces"}},
		{"value produced twice", baseProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[2].Output[0] = mp.Graph.Node[1].Output[0]
			mp.Graph.Output[0].Name = str(mp.Graph.Node[1].Output[0])
		}, []string{"Add_2_out0", "defined twice", "Relu_3"}},
		{"output overwrites an initializer", baseProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[2].Output[0] = "bias"
			mp.Graph.Output[0].Name = str("bias")
		}, []string{`"bias"`, "defined twice"}},
		{"initializer twice", baseProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, proto.Clone(mp.Graph.Initializer[0]).(*onnx.TensorProto))
		}, []string{`"w"`, "twice"}},
		{"output never produced", baseProto, func(mp *onnx.ModelProto) { mp.Graph.Output[0].Name = str("nowhere") }, []string{`"nowhere"`, "never produced"}},
		{"initializer bytes", baseProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0].RawData = mp.Graph.Initializer[0].RawData[:44]
		}, []string{`"w"`, "44 bytes", "48"}},
		{"int4 not packed", blockedProto, func(mp *onnx.ModelProto) {
			w := mp.Graph.Initializer[0]
			w.RawData = make([]byte, 512) // one byte per element: 64×8 int4 packs into 256
		}, []string{`"W"`, "512 bytes", "256"}},
		{"per-axis scale length", qdqProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[1] = graph.FloatTensor("W_scale", []int64{4}, []float32{1, 2, 3, 4})
			mp.Graph.Initializer[2] = graph.NewTensor("W_zp", onnx.TensorProto_INT8, []int64{4}, make([]byte, 4))
		}, []string{"DequantizeLinear", `"W_scale" has 4 entries`, "has 3"}},
		{"per-axis axis", qdqProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute[0].I = proto.Int64(0) // axis 0 has 4 entries, scale 3
		}, []string{"DequantizeLinear_1", "3 entries", "axis 0"}},
		{"axis out of range", qdqProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute[0].I = proto.Int64(2)
		}, []string{"axis 2 out of range"}},
		{"zero point shape", qdqProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[2] = graph.NewTensor("W_zp", onnx.TensorProto_INT8, []int64{1}, make([]byte, 1))
		}, []string{`zero point "W_zp"`, "[1]", "[3]"}},
		{"2-D scale without blocks", qdqProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[1] = graph.FloatTensor("W_scale", []int64{1, 3}, []float32{1, 2, 3})
			mp.Graph.Initializer[2] = graph.NewTensor("W_zp", onnx.TensorProto_INT8, []int64{1, 3}, make([]byte, 3))
		}, []string{"1-D"}},
		{"blocked scale", blockedProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[1] = graph.FloatTensor("W_scale", []int64{4, 8}, make([]float32, 32))
		}, []string{"block_size 32", "needs 2 at dim 0"}},
		{"MatMulNBits B shape", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0] = graph.NewTensor("B", onnx.TensorProto_UINT8, []int64{8, 4, 8}, make([]byte, 256))
		}, []string{"MatMulNBits", `"B"`, "[8 4 8]", "[8 2 16]"}},
		{"MatMulNBits bits", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute[2].I = proto.Int64(8) // B would be [8, 2, 32]
		}, []string{"bits=8", "[8 2 32]"}},
		{"MatMulNBits K", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute[0].I = proto.Int64(96)
		}, []string{`"x"`, "K=96"}},
		{"MatMulNBits block_size", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute[3].I = proto.Int64(24)
		}, []string{"block_size=24"}},
		{"MatMulNBits missing N", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Node[0].Attribute = mp.Graph.Node[0].Attribute[:1]
		}, []string{"N=0"}},
		{"MatMulNBits scales", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[1] = graph.FloatTensor("scales", []int64{8}, make([]float32, 8))
		}, []string{`"scales"`, "8 values", "need 16"}},
		{"MatMulNBits zero points", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[2] = graph.NewTensor("zp", onnx.TensorProto_UINT8, []int64{16}, make([]byte, 16))
		}, []string{`"zp"`, "16 values", "need 8"}},
		{"MatMulNBits float zero points", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[2] = graph.FloatTensor("zp", []int64{8}, make([]float32, 8))
		}, []string{`"zp"`, "8 values", "need 16"}},
		{"MatMulNBits bias", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[3] = graph.FloatTensor("bias", []int64{4}, make([]float32, 4))
		}, []string{`"bias"`, "N=8"}},
		{"MatMulNBits B type", nbitsProto, func(mp *onnx.ModelProto) {
			mp.Graph.Initializer[0] = graph.NewTensor("B", onnx.TensorProto_INT8, []int64{8, 2, 16}, make([]byte, 256))
		}, []string{`"B"`, "UINT8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mp := c.base()
			if err := graph.CheckInvariants(&graph.Model{Proto: proto.Clone(mp).(*onnx.ModelProto)}); err != nil {
				t.Fatalf("unedited model: %v", err)
			}
			c.edit(mp)
			err := graph.CheckInvariants(&graph.Model{Proto: mp})
			if err == nil {
				t.Fatal("violation accepted")
			}
			if !errors.Is(err, graph.ErrInvalidModel) {
				t.Errorf("%q does not wrap ErrInvalidModel", err)
			}
			for _, p := range c.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("%q does not mention %q", err, p)
				}
			}
		})
	}
	if err := graph.CheckInvariants(nil); !errors.Is(err, graph.ErrInvalidModel) {
		t.Errorf("nil model: %v", err)
	}
}

// manifestModel is one entry of fixtures/manifest.json.
type manifestModel struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Kind string `json:"kind"`
	// RefInputs is the .npz of reference inputs, relative to fixtures/.
	RefInputs string `json:"ref_inputs"`
}

func fixtureManifest(t testing.TB) []manifestModel {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "fixtures", "manifest.json"))
	if err != nil {
		t.Fatalf("fixture manifest: %v", err)
	}
	var list []manifestModel
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("fixture manifest: %v", err)
	}
	if len(list) == 0 {
		t.Fatal("fixture manifest lists no models")
	}
	return list
}
