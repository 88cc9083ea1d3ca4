package tfjs

import "strconv"

// GraphDef writes a TensorFlow GraphDef, node by node, in the protobuf-JSON
// form of a TF.js model.json's "modelTopology": for networks whose
// architecture exists only in code or in another framework's files
// (interop/faceapi, interop/vggface), so that [LoadFS] reads and builds
// them like any converted graph. Weights are Const nodes whose values come
// from the model.json's weights manifest.
type GraphDef struct {
	Node []NodeDef `json:"node"`
}

// NodeDef is one GraphDef node: its name, op (a TensorFlow op name such
// as "Conv2D"), inputs (names of earlier nodes) and attributes (see
// [IntsAttr], [StringAttr]).
type NodeDef struct {
	Name  string         `json:"name"`
	Op    string         `json:"op"`
	Input []string       `json:"input,omitempty"`
	Attr  map[string]any `json:"attr,omitempty"`
}

// Add appends a node and returns its name, to be used as another node's
// input.
func (g *GraphDef) Add(name, op string, attr map[string]any, inputs ...string) string {
	g.Node = append(g.Node, NodeDef{Name: name, Op: op, Input: inputs, Attr: attr})
	return name
}

// IntsAttr is a list-of-ints attribute (strides, ksize).
func IntsAttr(v ...int) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return map[string]any{"list": map[string]any{"i": s}}
}

// StringAttr is a string attribute (padding); protobuf JSON writes bytes
// in base64, as encoding/json does a []byte.
func StringAttr(s string) map[string]any { return map[string]any{"s": []byte(s)} }
