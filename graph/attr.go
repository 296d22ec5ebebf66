package graph

import "github.com/pare-dev/pare/onnx"

// Attr returns the node's attribute called name, or nil.
func (n *Node) Attr(name string) *onnx.AttributeProto {
	for _, a := range n.Proto.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// IntAttr returns the integer attribute name, or def when absent.
func (n *Node) IntAttr(name string, def int64) int64 {
	if a := n.Attr(name); a != nil && a.I != nil {
		return a.GetI()
	}
	return def
}

// FloatAttr returns the float attribute name, or def when absent.
func (n *Node) FloatAttr(name string, def float32) float32 {
	if a := n.Attr(name); a != nil && a.F != nil {
		return a.GetF()
	}
	return def
}

// StringAttr returns the string attribute name, or def when absent.
func (n *Node) StringAttr(name, def string) string {
	if a := n.Attr(name); a != nil && a.S != nil {
		return string(a.GetS())
	}
	return def
}

// IntsAttr returns the integer list attribute name, or def when absent.
func (n *Node) IntsAttr(name string, def []int64) []int64 {
	if a := n.Attr(name); a != nil && (len(a.Ints) > 0 || a.GetType() == onnx.AttributeProto_INTS) {
		return a.Ints
	}
	return def
}

// FloatsAttr returns the float list attribute name, or def when absent.
func (n *Node) FloatsAttr(name string, def []float32) []float32 {
	if a := n.Attr(name); a != nil && (len(a.Floats) > 0 || a.GetType() == onnx.AttributeProto_FLOATS) {
		return a.Floats
	}
	return def
}

// SetIntAttr sets (or adds) an integer attribute.
func (n *Node) SetIntAttr(name string, v int64) {
	if a := n.Attr(name); a != nil {
		a.I, a.Type = &v, onnx.AttributeProto_INT.Enum()
		return
	}
	n.Proto.Attribute = append(n.Proto.Attribute, &onnx.AttributeProto{
		Name: &name, Type: onnx.AttributeProto_INT.Enum(), I: &v})
}

// SetIntsAttr sets (or adds) an integer list attribute.
func (n *Node) SetIntsAttr(name string, v []int64) {
	if a := n.Attr(name); a != nil {
		a.Ints, a.Type = v, onnx.AttributeProto_INTS.Enum()
		return
	}
	n.Proto.Attribute = append(n.Proto.Attribute, &onnx.AttributeProto{
		Name: &name, Type: onnx.AttributeProto_INTS.Enum(), Ints: v})
}
