package graph

import (
	"fmt"
	"strings"

	"github.com/pare-dev/pare/onnx"
)

// ErrShapeMismatch marks a model whose known shapes contradict an
// operator's rules (an invalid model). errors.Is also matches
// ErrInvalidModel.
var ErrShapeMismatch = fmt.Errorf("%w: shapes do not match", ErrInvalidModel)

// TensorShape is what static inference knows about a tensor: its element
// type (UNDEFINED when unknown) and, when its rank is known, its dims.
type TensorShape struct {
	Elem   DataType
	Dims   []Dim
	Ranked bool
}

// ShapeOf returns a ranked shape.
func ShapeOf(elem DataType, dims ...Dim) TensorShape {
	return TensorShape{Elem: elem, Dims: dims, Ranked: true}
}

// StaticShape returns a ranked shape of known sizes.
func StaticShape(elem DataType, dims ...int64) TensorShape {
	ds := make([]Dim, len(dims))
	for i, d := range dims {
		ds[i] = DimOf(d)
	}
	return ShapeOf(elem, ds...)
}

// Rank returns the number of dims, or -1 when unknown.
func (s TensorShape) Rank() int {
	if !s.Ranked {
		return -1
	}
	return len(s.Dims)
}

// Ints returns the dims when all are known.
func (s TensorShape) Ints() ([]int64, bool) {
	if !s.Ranked {
		return nil, false
	}
	out := make([]int64, len(s.Dims))
	for i, d := range s.Dims {
		v, ok := d.Value()
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// Elements returns the number of elements with every symbol set to
// symValue; false when the rank or a dim is unknown.
func (s TensorShape) Elements(symValue int64) (int64, bool) {
	if !s.Ranked {
		return 0, false
	}
	n := int64(1)
	for _, d := range s.Dims {
		v, ok := d.Eval(symValue)
		if !ok {
			return 0, false
		}
		n *= v
	}
	return n, true
}

// Equal reports whether two shapes are identical (unknown dims are equal
// to unknown dims).
func (s TensorShape) Equal(o TensorShape) bool {
	if s.Elem != o.Elem || s.Ranked != o.Ranked || len(s.Dims) != len(o.Dims) {
		return false
	}
	for i := range s.Dims {
		if s.Dims[i] != o.Dims[i] {
			return false
		}
	}
	return true
}

// DimStrings returns the dims as strings ("batch", "16", "?").
func (s TensorShape) DimStrings() []string {
	out := make([]string, len(s.Dims))
	for i, d := range s.Dims {
		out[i] = d.String()
	}
	return out
}

func (s TensorShape) String() string {
	elem := "?"
	if s.Elem != onnx.TensorProto_UNDEFINED {
		elem = strings.ToLower(s.Elem.String())
	}
	if !s.Ranked {
		return elem + "[*]"
	}
	return elem + "[" + strings.Join(s.DimStrings(), ",") + "]"
}

// Conflict records a value whose declared shape (value_info or graph
// output) disagrees with the inferred one.
type Conflict struct {
	Value    string
	Declared TensorShape
	Inferred TensorShape
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s: declared %v, inferred %v", c.Value, c.Declared, c.Inferred)
}

// Shapes holds the result of InferShapes.
type Shapes struct {
	shapes map[string]TensorShape
	consts map[string]*cval
	// Conflicts lists declared shapes that disagree with inference, in
	// node order.
	Conflicts []Conflict
}

// Of returns what is known of the value called name; false when nothing
// is (an unknown op's output, or no such value).
func (s *Shapes) Of(name string) (TensorShape, bool) {
	t, ok := s.shapes[name]
	return t, ok
}

// IntValue returns the contents of a small integer tensor whose value is
// known statically (shape computations: Shape, Gather, Concat, ...), as
// Dims so that symbolic sizes flow through; false when unknown.
func (s *Shapes) IntValue(name string) ([]Dim, bool) {
	c := s.consts[name]
	if c == nil {
		return nil, false
	}
	return c.v, true
}

// ShapeFromInfo converts a declared value_info type; unset dims are
// unknown, dim_params symbolic.
func ShapeFromInfo(vi *onnx.ValueInfoProto) (TensorShape, bool) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return TensorShape{}, false
	}
	t := TensorShape{Elem: DataType(tt.GetElemType())}
	if tt.Shape == nil {
		return t, true
	}
	t.Ranked = true
	t.Dims = make([]Dim, len(tt.Shape.Dim))
	for i, d := range tt.Shape.Dim {
		switch v := d.Value.(type) {
		case *onnx.TensorShapeProto_Dimension_DimValue:
			if v.DimValue >= 0 {
				t.Dims[i] = DimOf(v.DimValue)
			}
		case *onnx.TensorShapeProto_Dimension_DimParam:
			t.Dims[i] = SymDim(v.DimParam)
		}
	}
	return t, true
}
