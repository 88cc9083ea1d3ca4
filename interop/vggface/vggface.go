// Package vggface runs VGG-Face (Parkhi, Vedaldi & Zisserman, "Deep Face
// Recognition", BMVC 2015) as a TensorFlow.js-style graph, so that it can
// serve as a pretrained trunk under trainable heads (model.ImportTrunk,
// trunk "vggface") like the TF.js networks of ../shared/models/tfjs.
//
// The VGG group releases the network for Caffe, in vgg_face_caffe.tar.gz
// (https://www.robots.ox.ac.uk/~vgg/software/vgg_face/): VGG_FACE.caffemodel
// (the weights, 580 MB) and VGG_FACE_deploy.prototxt (the definition). It
// is not in ../shared; a user who has it gives [Load] the unpacked folder.
// Load reads the weights with package interop/caffe and writes VGG-16's
// architecture as a TensorFlow GraphDef around them ([Topology]), which
// package interop/tfjs builds on any backend. The definition is checked
// when it is in the folder and not needed otherwise: the architecture is
// fixed (13 convolutions 3×3, pad 1, in 5 blocks of 2, 2, 3, 3, 3, each
// block ending in a 2×2 max pool of stride 2; fc6 and fc7 with ReLU), and
// the widths come from the weights, so a smaller net of the same shape
// (the tests') loads too. fc8, the 2622 identities of the training set,
// is not part of the graph.
//
// The graph's nodes, for [tfjs.Graph.Build] and [tfjs.Graph.NewExec]:
//
//	Input [N, S, S, 3] float32, RGB on the 0..255 scale; S is 224 for the
//	      released net (in general 32× the side of pool5, which fc6's
//	      width gives)
//	Pool5 [N, S/32, S/32, C] the last convolution block's max pool
//	      (C = 512 for the released net)
//	FC7   [N, D] fc7 after its ReLU (D = 4096 for the released net)
//
// Caffe's conventions are folded into the weights: the input is RGB, not
// BGR (conv1_1's input channels are reversed), the graph subtracts
// [caffe.VGGFaceMeanRGB] itself (node "preprocess/sub", before conv1_1's
// zero padding, as Caffe does), kernels are HWIO, and fc6's inputs are
// reordered from Caffe's CHW flattening to the HWC order of an NHWC
// Reshape. The weights are Const nodes named "<layer>/kernel" and
// "<layer>/bias" after the Caffe layers (conv1_1 … conv5_3, fc6, fc7),
// plus "preprocess/mean_rgb" (float32 [3]) and "flatten/shape" (int32 [2]).
package vggface

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/interop/tfjs"
)

// Node names of the graph [Load] returns.
const (
	Input = "input"
	Pool5 = "pool5"
	FC7   = "relu7"
)

// File names of the VGG group's release (vgg_face_caffe.tar.gz).
const (
	WeightsFile = "VGG_FACE.caffemodel"
	DeployFile  = "VGG_FACE_deploy.prototxt"
)

// Size is the side of the released net's input.
const Size = 224

// Blocks holds the number of convolutions of each of VGG-16's five blocks.
var Blocks = [5]int{2, 2, 3, 3, 3}

// Release is where the VGG group publishes the network.
const Release = "vgg_face_caffe.tar.gz from https://www.robots.ox.ac.uk/~vgg/software/vgg_face/"

// Load reads VGG-Face from dir, the unpacked release: [WeightsFile] and,
// when present, [DeployFile], which must then describe the same net.
// Errors name the file and the layer: a missing folder or file says where
// the release is, a truncated or foreign caffemodel names what is wrong,
// a missing layer or a blob of the wrong shape names the layer.
func Load(dir string) (*tfjs.Graph, error) {
	path := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("vggface: %s does not exist: VGG-Face is not in ../shared; download %s, unpack it and give its folder", path, Release)
		}
		return nil, fmt.Errorf("vggface: %w", err)
	}
	w, err := caffe.ReadNetParameterFile(path)
	if err != nil {
		return nil, fmt.Errorf("vggface: %w", err)
	}
	g, err := FromCaffe(w, path)
	if err != nil {
		return nil, err
	}
	deploy := filepath.Join(dir, DeployFile)
	if _, err := os.Stat(deploy); err == nil {
		def, err := caffe.ParseNetFile(deploy)
		if err != nil {
			return nil, fmt.Errorf("vggface: %w", err)
		}
		if err := checkDef(def, g); err != nil {
			return nil, fmt.Errorf("vggface: %s: %w", deploy, err)
		}
	}
	return g, nil
}

// Geometry is the size of a loaded net.
type Geometry struct {
	// Side is the input's side (S), Pool5 the shape [S/32, S/32, C] of
	// the Pool5 node per image, Dim the width of FC7.
	Side  int
	Pool5 []int
	Dim   int
}

// GeometryOf returns g's geometry, read from its weights.
func GeometryOf(g *tfjs.Graph) (Geometry, error) {
	k, f7 := g.Weights["conv5_3/kernel"], g.Weights["fc7/bias"]
	shape := g.Weights["flatten/shape"]
	if k == nil || f7 == nil || shape == nil || len(k.Shape) != 4 || len(f7.Shape) != 1 || len(shape.I32) != 2 {
		return Geometry{}, fmt.Errorf("vggface: %s is not a VGG-Face graph (no conv5_3/kernel, fc7/bias or flatten/shape)", g.Path)
	}
	c := k.Shape[3]
	h := isqrt(int(shape.I32[1]) / c)
	return Geometry{Side: 32 * h, Pool5: []int{h, h, c}, Dim: f7.Shape[0]}, nil
}

// FromCaffe builds the graph from VGG-Face's weights; path names their
// file in errors and becomes the graph's Path.
func FromCaffe(w *caffe.Weights, path string) (*tfjs.Graph, error) {
	weights := map[string]*tfjs.Tensor{}
	add := func(name string, shape []int, v []float32) {
		weights[name] = &tfjs.Tensor{Name: name, DType: tfjs.Float32, Shape: shape, F32: v}
	}
	cin := 3
	for b, n := range Blocks {
		for j := range n {
			name := fmt.Sprintf("conv%d_%d", b+1, j+1)
			wb, bias, err := blobs(w, path, name, 4)
			if err != nil {
				return nil, err
			}
			s := wb.Squeezed()
			cout := s[0]
			if s[1] != cin || s[2] != 3 || s[3] != 3 {
				return nil, fmt.Errorf("vggface: %s: layer %q: weights have shape %v, want [Cout, %d, 3, 3]: not VGG-Face's weights", path, name, wb.Shape, cin)
			}
			if len(bias) != cout {
				return nil, fmt.Errorf("vggface: %s: layer %q: bias has %d values, want %d", path, name, len(bias), cout)
			}
			add(name+"/kernel", []int{3, 3, cin, cout}, caffe.ConvKernelHWIO(wb.Data, cout, cin, 3, cin == 3 && b == 0))
			add(name+"/bias", []int{cout}, bias)
			cin = cout
		}
	}
	// fc6 reads pool5 [C, h, h] flattened: its width gives h.
	wb, bias, err := blobs(w, path, "fc6", 2)
	if err != nil {
		return nil, err
	}
	s := wb.Squeezed()
	out6, in := s[0], s[1]
	h := isqrt(in / cin)
	if h < 1 || h*h*cin != in || len(bias) != out6 {
		return nil, fmt.Errorf("vggface: %s: layer \"fc6\": weights have shape %v and bias %d values, want [Out, h·h·%d] (the flattened pool5 of %d channels) and Out", path, wb.Shape, len(bias), cin, cin)
	}
	add("fc6/kernel", []int{in, out6}, caffe.InnerProductCHWToHWC(wb.Data, out6, cin, h, h))
	add("fc6/bias", []int{out6}, bias)
	if wb, bias, err = blobs(w, path, "fc7", 2); err != nil {
		return nil, err
	}
	s = wb.Squeezed()
	if s[1] != out6 || len(bias) != s[0] {
		return nil, fmt.Errorf("vggface: %s: layer \"fc7\": weights have shape %v and bias %d values, want [Out, %d] and Out", path, wb.Shape, len(bias), out6)
	}
	add("fc7/kernel", []int{out6, s[0]}, caffe.Transpose(wb.Data, s[0], out6))
	add("fc7/bias", []int{s[0]}, bias)
	for name, t := range weights {
		for _, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("vggface: %s: weight %s holds NaN or Inf", path, name)
			}
		}
	}
	add("preprocess/mean_rgb", []int{3}, caffe.VGGFaceMeanRGB[:])
	weights["flatten/shape"] = &tfjs.Tensor{Name: "flatten/shape", DType: tfjs.Int32, Shape: []int{2}, I32: []int32{-1, int32(in)}}

	topo, err := Topology(32 * h)
	if err != nil {
		return nil, err
	}
	g, err := tfjs.LoadFS(fstest.MapFS{graphName: {Data: topo}}, graphName)
	if err != nil {
		return nil, fmt.Errorf("vggface: %w", err)
	}
	g.Weights = weights
	g.Path = path
	return g, nil
}

// blobs returns a layer's weights, of rank want after squeezing leading
// 1s, and its bias, with errors naming the file and the layer.
func blobs(w *caffe.Weights, path, name string, rank int) (*caffe.Blob, []float32, error) {
	l := w.Layer(name)
	if l == nil {
		return nil, nil, fmt.Errorf("vggface: %s: no layer %q: not VGG-Face's weights (a VGG-16 caffemodel with layers conv1_1 … conv5_3, fc6, fc7)", path, name)
	}
	if len(l.Blobs) != 2 {
		return nil, nil, fmt.Errorf("vggface: %s: layer %q has %d blobs, want 2 (weights and bias)", path, name, len(l.Blobs))
	}
	wb, bb := &l.Blobs[0], &l.Blobs[1]
	s := wb.Squeezed()
	for len(s) < rank && len(wb.Shape) >= rank { // a width of 1 squeezed away
		s = append([]int{1}, s...)
	}
	if len(s) != rank {
		return nil, nil, fmt.Errorf("vggface: %s: layer %q: weights have shape %v, want rank %d", path, name, wb.Shape, rank)
	}
	if len(bb.Squeezed()) != 1 {
		return nil, nil, fmt.Errorf("vggface: %s: layer %q: bias has shape %v, want [Out]", path, name, bb.Shape)
	}
	n := 1
	for _, d := range s {
		n *= d
	}
	if n != len(wb.Data) {
		return nil, nil, fmt.Errorf("vggface: %s: layer %q: weights have shape %v but %d values", path, name, wb.Shape, len(wb.Data))
	}
	return &caffe.Blob{Shape: s, Data: wb.Data}, bb.Data, nil
}

// checkDef checks a deploy definition against the loaded net: the
// declared input side, and every convolution, pool and inner product of
// the architecture with the widths of the weights.
func checkDef(def *caffe.NetDef, g *tfjs.Graph) error {
	geo, err := GeometryOf(g)
	if err != nil {
		return err
	}
	if len(def.Inputs) > 0 {
		if s := def.Inputs[0].Shape; len(s) != 4 || s[1] != 3 || s[2] != geo.Side || s[3] != geo.Side {
			return fmt.Errorf("input %q has shape %v; the weights need [N, 3, %d, %d]", def.Inputs[0].Name, s, geo.Side, geo.Side)
		}
	}
	for b, n := range Blocks {
		for j := range n {
			name := fmt.Sprintf("conv%d_%d", b+1, j+1)
			l := def.Layer(name)
			if l == nil || l.Conv == nil {
				return fmt.Errorf("no convolution %q", name)
			}
			p := l.Conv
			if p.KernelH != 3 || p.KernelW != 3 || p.StrideH != 1 || p.StrideW != 1 || p.PadH != 1 || p.PadW != 1 || p.Group != 1 || !p.BiasTerm {
				return fmt.Errorf("layer %q: %d×%d kernel, stride %d×%d, pad %d×%d, group %d; VGG-Face has 3×3, stride 1, pad 1, group 1, with bias",
					name, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.PadH, p.PadW, p.Group)
			}
			if want := g.Weights[name+"/kernel"].Shape[3]; p.NumOutput != want {
				return fmt.Errorf("layer %q has %d outputs, the weights %d", name, p.NumOutput, want)
			}
		}
		name := fmt.Sprintf("pool%d", b+1)
		l := def.Layer(name)
		if l == nil || l.Pool == nil {
			return fmt.Errorf("no pooling layer %q", name)
		}
		if p := l.Pool; p.Pool != "MAX" || p.Global || p.KernelH != 2 || p.KernelW != 2 || p.StrideH != 2 || p.StrideW != 2 || p.PadH != 0 || p.PadW != 0 {
			return fmt.Errorf("layer %q: %s %d×%d stride %d×%d pad %d×%d; VGG-Face has MAX 2×2 stride 2 pad 0", name, p.Pool, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.PadH, p.PadW)
		}
	}
	for _, name := range []string{"fc6", "fc7"} {
		l := def.Layer(name)
		if l == nil || l.InnerProduct == nil {
			return fmt.Errorf("no inner product %q", name)
		}
		if want := g.Weights[name+"/bias"].Shape[0]; l.InnerProduct.NumOutput != want {
			return fmt.Errorf("layer %q has %d outputs, the weights %d", name, l.InnerProduct.NumOutput, want)
		}
	}
	return nil
}

// isqrt returns the integer square root of n ≥ 0, or 0.
func isqrt(n int) int {
	if n <= 0 {
		return 0
	}
	r := int(math.Sqrt(float64(n)))
	for r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// graphName is the name under which the topology is parsed.
const graphName = "vggface.json"

// Topology returns the graph [Load] builds for a side×side input as a
// TF.js model.json with an empty weights manifest: the form in which a
// model file stores a trunk's graph (model.Trunk.Graph), the weights
// travelling as variables (the float32 ones) and int32 constants
// ("flatten/shape").
func Topology(side int) (json.RawMessage, error) {
	if side < 32 || side%32 != 0 {
		return nil, fmt.Errorf("vggface: input side %d: want a positive multiple of 32", side)
	}
	b := &tfjs.GraphDef{}
	x := b.Add(Input, "Placeholder", map[string]any{
		"dtype": map[string]any{"type": "DT_FLOAT"},
		"shape": map[string]any{"shape": map[string]any{"dim": []map[string]string{{"size": "-1"}, {"size": fmt.Sprint(side)}, {"size": fmt.Sprint(side)}, {"size": "3"}}}},
	})
	x = b.Add("preprocess/sub", "Sub", nil, x, b.Add("preprocess/mean_rgb", "Const", nil))
	for i, n := range Blocks {
		for j := range n {
			l := fmt.Sprintf("conv%d_%d", i+1, j+1)
			c := b.Add(l+"/Conv2D", "Conv2D", map[string]any{"strides": tfjs.IntsAttr(1, 1, 1, 1), "padding": tfjs.StringAttr("SAME")}, x, b.Add(l+"/kernel", "Const", nil))
			c = b.Add(l+"/BiasAdd", "BiasAdd", nil, c, b.Add(l+"/bias", "Const", nil))
			x = b.Add(fmt.Sprintf("relu%d_%d", i+1, j+1), "Relu", nil, c)
		}
		x = b.Add(fmt.Sprintf("pool%d", i+1), "MaxPool", map[string]any{"ksize": tfjs.IntsAttr(1, 2, 2, 1), "strides": tfjs.IntsAttr(1, 2, 2, 1), "padding": tfjs.StringAttr("VALID")}, x)
	}
	x = b.Add("flatten", "Reshape", nil, x, b.Add("flatten/shape", "Const", nil))
	for i, l := range []string{"fc6", "fc7"} {
		y := b.Add(l+"/MatMul", "MatMul", nil, x, b.Add(l+"/kernel", "Const", nil))
		y = b.Add(l+"/BiasAdd", "BiasAdd", nil, y, b.Add(l+"/bias", "Const", nil))
		x = b.Add(fmt.Sprintf("relu%d", i+6), "Relu", nil, y)
	}
	return json.Marshal(map[string]any{
		"format":          "graph-model",
		"generatedBy":     "agegender interop/vggface from VGG-Face's VGG-16 (Parkhi et al. 2015)",
		"modelTopology":   b,
		"weightsManifest": []any{},
	})
}
