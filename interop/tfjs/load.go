// Package tfjs imports TensorFlow.js graph models (the "graph-model" format
// written by tensorflowjs_converter) into GoMLX.
//
// A graph model is a model.json file plus one or more binary weight shards.
// The JSON holds a TensorFlow GraphDef in protobuf-JSON form under
// "modelTopology" (a list of nodes, each with a name, an op, its inputs by
// name and a map of attributes) and a "weightsManifest" that says, for every
// Const node, the dtype and shape of its value and where it lies in the
// concatenated shards. Weights may be quantised: a float32 tensor stored as
// float16, or as uint8/uint16 with an affine map value = q*scale + min.
//
// [Load] reads and checks both parts and dequantises every weight to
// float32 (int32 weights stay int32). [Graph.Build] then walks the GraphDef
// from the requested outputs back to the placeholders and emits one GoMLX op
// (or a few) per TensorFlow op, so the result is an ordinary GoMLX
// computation that runs on any backend and can be differentiated, fine-tuned
// or combined with other layers. Only the ops listed in [SupportedOps] are
// implemented; any other op is an error naming the op and the node.
//
// Loading is defensive: file sizes, node counts, tensor ranks and element
// counts are bounded, shard lengths must match the manifest exactly, and
// shard paths may not leave the model's directory, so a hostile model.json
// cannot make Load allocate without bound or read arbitrary files.
package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes/float16"
)

// Limits on what Load accepts. They are far above the needs of mobile-size
// face networks and exist only to refuse hostile or corrupt files early.
const (
	MaxJSONBytes   = 64 << 20 // size of model.json
	MaxWeightBytes = 1 << 30  // total size of all weight shards
	MaxNodes       = 200_000  // nodes in the GraphDef
	MaxRank        = 8        // rank of any weight or placeholder
)

// DType is the element type of a weight after loading.
type DType string

// The dtypes a loaded weight can have. Quantised weights are dequantised to
// Float32.
const (
	Float32 DType = "float32"
	Int32   DType = "int32"
)

// Tensor is a dense weight value in row-major order. Exactly one of F32 and
// I32 is set, according to DType.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	F32   []float32
	I32   []int32
}

// Size returns the number of elements of t.
func (t *Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Node is one GraphDef node.
type Node struct {
	Name   string
	Op     string
	Inputs []string // producer names, "name" or "name:k"; "^name" marks a control input
	Attr   map[string]Attr
}

// Attr is one attribute value of a node, decoded from protobuf JSON:
// strings are base64 in the file and decoded here, int64 values are JSON
// strings and parsed here. Fields that the attribute does not set are nil.
type Attr struct {
	S     *string
	I     *int64
	F     *float64
	B     *bool
	Type  string
	Shape []int // for shape attributes; -1 marks an unknown dimension
	List  *AttrList
}

// AttrList is the value of a list attribute.
type AttrList struct {
	S []string
	I []int64
	F []float64
	B []bool
}

// Placeholder describes a graph input.
type Placeholder struct {
	Name  string
	DType string // TensorFlow dtype, such as "DT_FLOAT"
	Shape []int  // -1 marks an unknown (batch) dimension; nil if the model does not say
}

// Graph is a loaded graph model: its nodes, its dequantised weights and the
// metadata of its model.json.
type Graph struct {
	Path         string // the model.json it was loaded from
	Format       string // "graph-model"
	GeneratedBy  string
	ConvertedBy  string
	Nodes        []*Node // in file order
	Weights      map[string]*Tensor
	Placeholders []Placeholder
	// Outputs lists the output names of the signature in userDefinedMetadata
	// or modelTopology, without any ":0" suffix, sorted; when the model has
	// no signature they are the nodes that no other node consumes.
	Outputs []string

	byName map[string]*Node
}

// Node returns the node with the given name (a ":k" suffix is ignored), or
// nil.
func (m *Graph) Node(name string) *Node {
	name, _ = splitOutput(name)
	return m.byName[name]
}

// --- JSON file layout -------------------------------------------------------

type jsonModel struct {
	Format              string          `json:"format"`
	GeneratedBy         string          `json:"generatedBy"`
	ConvertedBy         string          `json:"convertedBy"`
	ModelTopology       *jsonTopology   `json:"modelTopology"`
	WeightsManifest     []jsonGroup     `json:"weightsManifest"`
	Signature           *jsonSignature  `json:"signature"`
	UserDefinedMetadata json.RawMessage `json:"userDefinedMetadata"`
}

type jsonTopology struct {
	Node      []jsonNode     `json:"node"`
	Signature *jsonSignature `json:"signature"`
}

type jsonSignature struct {
	Inputs  map[string]jsonTensorInfo `json:"inputs"`
	Outputs map[string]jsonTensorInfo `json:"outputs"`
}

type jsonTensorInfo struct {
	Name string `json:"name"`
}

type jsonNode struct {
	Name  string              `json:"name"`
	Op    string              `json:"op"`
	Input []string            `json:"input"`
	Attr  map[string]jsonAttr `json:"attr"`
}

type jsonAttr struct {
	S     *string       `json:"s"`
	I     *json.Number  `json:"i"`
	F     *json.Number  `json:"f"`
	B     *bool         `json:"b"`
	Type  string        `json:"type"`
	Shape *jsonShape    `json:"shape"`
	List  *jsonAttrList `json:"list"`
}

type jsonShape struct {
	Dim         []struct{ Size json.Number } `json:"dim"`
	UnknownRank bool                         `json:"unknownRank"`
}

type jsonAttrList struct {
	S []string      `json:"s"`
	I []json.Number `json:"i"`
	F []json.Number `json:"f"`
	B []bool        `json:"b"`
}

type jsonGroup struct {
	Paths   []string     `json:"paths"`
	Weights []jsonWeight `json:"weights"`
}

type jsonWeight struct {
	Name         string            `json:"name"`
	Shape        []int64           `json:"shape"`
	DType        string            `json:"dtype"`
	Quantization *jsonQuantization `json:"quantization"`
}

type jsonQuantization struct {
	DType string   `json:"dtype"`
	Min   *float64 `json:"min"`
	Scale *float64 `json:"scale"`
}

// Load reads a graph model from jsonPath (a model.json) and the weight
// shards it names, which must lie in the same directory (or below it).
// Every error names the file and what is wrong with it.
func Load(jsonPath string) (*Graph, error) {
	return load(os.DirFS(filepath.Dir(jsonPath)), filepath.Base(jsonPath), jsonPath)
}

// LoadFS is [Load] reading from fsys: name is the model.json, and the weight
// shards lie next to it. It loads models embedded with go:embed. Errors and
// Graph.Path name the file as name.
func LoadFS(fsys fs.FS, name string) (*Graph, error) {
	return load(fsys, name, name)
}

// load reads the model.json name of fsys; jsonPath is how messages and
// Graph.Path name it.
func load(fsys fs.FS, name, jsonPath string) (*Graph, error) {
	raw, err := readBounded(fsys, name, jsonPath, MaxJSONBytes)
	if err != nil {
		return nil, err
	}
	var jm jsonModel
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&jm); err != nil {
		return nil, fmt.Errorf("tfjs: %s: invalid JSON: %w", jsonPath, err)
	}
	if jm.Format != "" && jm.Format != "graph-model" {
		return nil, fmt.Errorf("tfjs: %s: format %q is not a graph model (a layers-model must be converted with tensorflowjs_converter --output_format=tfjs_graph_model)", jsonPath, jm.Format)
	}
	if jm.ModelTopology == nil || len(jm.ModelTopology.Node) == 0 {
		return nil, fmt.Errorf("tfjs: %s: modelTopology has no nodes", jsonPath)
	}
	if n := len(jm.ModelTopology.Node); n > MaxNodes {
		return nil, fmt.Errorf("tfjs: %s: %d nodes, more than the limit of %d", jsonPath, n, MaxNodes)
	}
	m := &Graph{Path: jsonPath, Format: jm.Format, GeneratedBy: jm.GeneratedBy, ConvertedBy: jm.ConvertedBy,
		byName: make(map[string]*Node, len(jm.ModelTopology.Node))}
	for i, jn := range jm.ModelTopology.Node {
		n, err := convertNode(jn)
		if err != nil {
			return nil, fmt.Errorf("tfjs: %s: node %d (%q): %w", jsonPath, i, jn.Name, err)
		}
		if _, dup := m.byName[n.Name]; dup {
			return nil, fmt.Errorf("tfjs: %s: two nodes are named %q", jsonPath, n.Name)
		}
		m.byName[n.Name] = n
		m.Nodes = append(m.Nodes, n)
		if n.Op == "Placeholder" {
			p := Placeholder{Name: n.Name}
			if a, ok := n.Attr["dtype"]; ok {
				p.DType = a.Type
			}
			if a, ok := n.Attr["shape"]; ok {
				p.Shape = a.Shape
			}
			m.Placeholders = append(m.Placeholders, p)
		}
	}
	for _, n := range m.Nodes {
		for _, in := range n.Inputs {
			if m.Node(strings.TrimPrefix(in, "^")) == nil {
				return nil, fmt.Errorf("tfjs: %s: node %q has input %q, which is not a node of the graph", jsonPath, n.Name, in)
			}
		}
	}
	m.Outputs = outputsOf(m, jm)

	m.Weights, err = loadWeights(fsys, path.Dir(name), jsonPath, jm.WeightsManifest)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// outputsOf returns the signature outputs, or the sink nodes if there is no
// signature.
func outputsOf(m *Graph, jm jsonModel) []string {
	sig := jm.Signature
	if sig == nil && jm.ModelTopology.Signature != nil {
		sig = jm.ModelTopology.Signature
	}
	if sig == nil && len(jm.UserDefinedMetadata) > 0 {
		var u struct {
			Signature *jsonSignature `json:"signature"`
		}
		if json.Unmarshal(jm.UserDefinedMetadata, &u) == nil {
			sig = u.Signature
		}
	}
	var outs []string
	if sig != nil {
		for k, v := range sig.Outputs {
			name := v.Name
			if name == "" {
				name = k
			}
			name, _ = splitOutput(name)
			if m.byName[name] != nil {
				outs = append(outs, name)
			}
		}
	}
	if len(outs) == 0 {
		used := map[string]bool{}
		for _, n := range m.Nodes {
			for _, in := range n.Inputs {
				name, _ := splitOutput(strings.TrimPrefix(in, "^"))
				used[name] = true
			}
		}
		for _, n := range m.Nodes {
			if !used[n.Name] && n.Op != "Const" {
				outs = append(outs, n.Name)
			}
		}
	}
	sortStrings(outs)
	return outs
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// splitOutput splits "name:k" into name and output index k (0 if absent).
func splitOutput(s string) (string, int) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	k, err := strconv.Atoi(s[i+1:])
	if err != nil || k < 0 {
		return s, 0
	}
	return s[:i], k
}

func convertNode(jn jsonNode) (*Node, error) {
	if jn.Name == "" {
		return nil, errors.New("node has no name")
	}
	if jn.Op == "" {
		return nil, errors.New("node has no op")
	}
	n := &Node{Name: jn.Name, Op: jn.Op, Inputs: jn.Input, Attr: make(map[string]Attr, len(jn.Attr))}
	for k, ja := range jn.Attr {
		a, err := convertAttr(ja)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		n.Attr[k] = a
	}
	return n, nil
}

func convertAttr(ja jsonAttr) (Attr, error) {
	var a Attr
	if ja.S != nil {
		s, err := base64.StdEncoding.DecodeString(*ja.S)
		if err != nil {
			return a, fmt.Errorf("string value is not base64: %w", err)
		}
		str := string(s)
		a.S = &str
	}
	if ja.I != nil {
		i, err := ja.I.Int64()
		if err != nil {
			return a, fmt.Errorf("int value %q: %w", ja.I.String(), err)
		}
		a.I = &i
	}
	if ja.F != nil {
		f, err := ja.F.Float64()
		if err != nil {
			return a, fmt.Errorf("float value %q: %w", ja.F.String(), err)
		}
		a.F = &f
	}
	a.B = ja.B
	a.Type = ja.Type
	if ja.Shape != nil {
		if len(ja.Shape.Dim) > MaxRank {
			return a, fmt.Errorf("shape of rank %d, more than %d", len(ja.Shape.Dim), MaxRank)
		}
		a.Shape = make([]int, len(ja.Shape.Dim))
		for i, d := range ja.Shape.Dim {
			v, err := d.Size.Int64()
			if d.Size == "" {
				v, err = -1, nil
			}
			if err != nil || v < -1 || v > math.MaxInt32 {
				return a, fmt.Errorf("shape dimension %q is not an integer in -1..2^31", d.Size)
			}
			a.Shape[i] = int(v)
		}
	}
	if ja.List != nil {
		l := &AttrList{B: ja.List.B}
		for _, s := range ja.List.S {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return a, fmt.Errorf("list string is not base64: %w", err)
			}
			l.S = append(l.S, string(b))
		}
		for _, v := range ja.List.I {
			i, err := v.Int64()
			if err != nil {
				return a, fmt.Errorf("list int %q: %w", v.String(), err)
			}
			l.I = append(l.I, i)
		}
		for _, v := range ja.List.F {
			f, err := v.Float64()
			if err != nil {
				return a, fmt.Errorf("list float %q: %w", v.String(), err)
			}
			l.F = append(l.F, f)
		}
		a.List = l
	}
	return a, nil
}

// readBounded reads the whole file name of fsys, refusing files larger
// than limit; messages call it path.
func readBounded(fsys fs.FS, name, path string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tfjs: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tfjs: %s: not a regular file", path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("tfjs: %s: %d bytes, more than the limit of %d", path, st.Size(), limit)
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("tfjs: %s: %w", path, err)
	}
	return buf, nil
}

// weightLayout is the storage of one manifest entry.
type weightLayout struct {
	w      jsonWeight
	shape  []int
	elems  int
	bytes  int64
	stored string // storage dtype: float32, int32, float16, uint8, uint16
}

func layoutOf(w jsonWeight) (weightLayout, error) {
	l := weightLayout{w: w}
	if w.Name == "" {
		return l, errors.New("weight without a name")
	}
	if len(w.Shape) > MaxRank {
		return l, fmt.Errorf("weight %q has rank %d, more than %d", w.Name, len(w.Shape), MaxRank)
	}
	elems := int64(1)
	for _, d := range w.Shape {
		if d < 0 || d > MaxWeightBytes {
			return l, fmt.Errorf("weight %q has dimension %d", w.Name, d)
		}
		elems *= d
		if elems > MaxWeightBytes {
			return l, fmt.Errorf("weight %q has more than %d elements", w.Name, int64(MaxWeightBytes))
		}
		l.shape = append(l.shape, int(d))
	}
	l.elems = int(elems)
	switch w.DType {
	case "float32", "int32":
	default:
		return l, fmt.Errorf("weight %q has dtype %q; only float32 and int32 are supported", w.Name, w.DType)
	}
	l.stored = w.DType
	if q := w.Quantization; q != nil {
		switch q.DType {
		case "float16":
			if w.DType != "float32" {
				return l, fmt.Errorf("weight %q: float16 quantisation of a %s weight", w.Name, w.DType)
			}
		case "uint8", "uint16":
			if q.Min == nil || q.Scale == nil {
				return l, fmt.Errorf("weight %q: %s quantisation without min and scale", w.Name, q.DType)
			}
		default:
			return l, fmt.Errorf("weight %q: unsupported quantisation dtype %q (want float16, uint8 or uint16)", w.Name, q.DType)
		}
		l.stored = q.DType
	}
	switch l.stored {
	case "float32", "int32":
		l.bytes = 4 * elems
	case "float16", "uint16":
		l.bytes = 2 * elems
	case "uint8":
		l.bytes = elems
	}
	return l, nil
}

// loadWeights reads every group of the manifest: its shards, concatenated,
// must be exactly as long as its weights.
// dir is the model.json's directory in fsys.
func loadWeights(fsys fs.FS, dir, jsonPath string, manifest []jsonGroup) (map[string]*Tensor, error) {
	weights := map[string]*Tensor{}
	var total int64
	for gi, grp := range manifest {
		var layouts []weightLayout
		var want int64
		for _, w := range grp.Weights {
			l, err := layoutOf(w)
			if err != nil {
				return nil, fmt.Errorf("tfjs: %s: weightsManifest group %d: %w", jsonPath, gi, err)
			}
			want += l.bytes
			if want > MaxWeightBytes {
				return nil, fmt.Errorf("tfjs: %s: weights need more than the limit of %d bytes", jsonPath, MaxWeightBytes)
			}
			layouts = append(layouts, l)
		}
		if len(grp.Paths) == 0 && want > 0 {
			return nil, fmt.Errorf("tfjs: %s: weightsManifest group %d has weights but no paths", jsonPath, gi)
		}
		// Check the shard sizes before reading anything.
		var have int64
		var paths []string
		for _, p := range grp.Paths {
			full, err := shardPath(dir, p)
			if err != nil {
				return nil, fmt.Errorf("tfjs: %s: %w", jsonPath, err)
			}
			st, err := fs.Stat(fsys, full)
			if err != nil {
				return nil, fmt.Errorf("tfjs: %s: weight shard: %w", jsonPath, err)
			}
			have += st.Size()
			paths = append(paths, full)
		}
		if have != want {
			return nil, fmt.Errorf("tfjs: %s: weightsManifest group %d: shards %s hold %d bytes but the manifest describes %d",
				jsonPath, gi, strings.Join(grp.Paths, ", "), have, want)
		}
		total += have
		if total > MaxWeightBytes {
			return nil, fmt.Errorf("tfjs: %s: weights are more than the limit of %d bytes", jsonPath, MaxWeightBytes)
		}
		buf := make([]byte, 0, have)
		for _, p := range paths {
			b, err := readBounded(fsys, p, filepath.Join(filepath.Dir(jsonPath), filepath.FromSlash(p)), have-int64(len(buf)))
			if err != nil {
				return nil, err
			}
			buf = append(buf, b...)
		}
		if int64(len(buf)) != want {
			return nil, fmt.Errorf("tfjs: %s: weightsManifest group %d: shards changed size while being read", jsonPath, gi)
		}
		off := int64(0)
		for _, l := range layouts {
			t := decodeWeight(l, buf[off:off+l.bytes])
			off += l.bytes
			if _, dup := weights[t.Name]; dup {
				return nil, fmt.Errorf("tfjs: %s: weight %q appears twice in the manifest", jsonPath, t.Name)
			}
			weights[t.Name] = t
		}
	}
	return weights, nil
}

// shardPath resolves a manifest path against the model directory dir (a
// slash-separated fs.FS path), refusing absolute paths and paths that climb
// out of it.
func shardPath(dir, p string) (string, error) {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", fmt.Errorf("weight shard path %q must be relative to the model directory", p)
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("weight shard path %q leaves the model directory", p)
	}
	return path.Join(dir, clean), nil
}

// decodeWeight converts the little-endian bytes b of one weight.
func decodeWeight(l weightLayout, b []byte) *Tensor {
	t := &Tensor{Name: l.w.Name, Shape: l.shape}
	if l.stored == "int32" {
		t.DType = Int32
		t.I32 = make([]int32, l.elems)
		for i := range t.I32 {
			t.I32[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return t
	}
	t.DType = Float32
	v := make([]float32, l.elems)
	switch l.stored {
	case "float32":
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "float16":
		for i := range v {
			v[i] = float16.FromBits(binary.LittleEndian.Uint16(b[2*i:])).Float32()
		}
	case "uint8":
		mn, sc := float32(*l.w.Quantization.Min), float32(*l.w.Quantization.Scale)
		for i := range v {
			v[i] = float32(b[i])*sc + mn
		}
	case "uint16":
		mn, sc := float32(*l.w.Quantization.Min), float32(*l.w.Quantization.Scale)
		for i := range v {
			v[i] = float32(binary.LittleEndian.Uint16(b[2*i:]))*sc + mn
		}
	}
	if l.w.DType == "int32" { // uint8/uint16-quantised int32 weights: round back
		t.DType = Int32
		t.I32 = make([]int32, l.elems)
		for i, f := range v {
			t.I32[i] = int32(math.Round(float64(f)))
		}
		return t
	}
	t.F32 = v
	return t
}
