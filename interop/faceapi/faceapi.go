// Package faceapi imports the age/gender network of face-api
// (@vladmandic/face-api on npm, MIT; originally justadudewhohacks/face-api.js)
// into GoMLX, reading its weights from the npm package's model folder.
//
// face-api ships the network as a bare TF.js weights manifest
// (age_gender_model-weights_manifest.json) and one shard
// (age_gender_model.bin, uint8-quantised), with the architecture only in
// its TypeScript source (src/xception/TinyXception.ts and
// src/ageGenderNet/AgeGenderNet.ts): a TinyXception with 2 middle blocks on
// 112×112 RGB, a 7×7 average pool to 512 features, and two fully connected
// heads, age (1 output, years, a regression) and gender (2 logits, male
// then female, then a softmax). [Load] writes that architecture as a
// TensorFlow GraphDef around the weights manifest and loads both with
// package interop/tfjs, so the net is an ordinary [tfjs.Graph]: its weights
// checked and dequantised by tfjs's loader, its ops built by
// [tfjs.Graph.Build] on any backend. The weights are never copied: give
// Load the package's folder.
//
// The graph's nodes, for [tfjs.Graph.Build] and [tfjs.Graph.NewExec]:
//
//	Input    [N, 112, 112, 3] float32, RGB on the 0..255 scale, resized as
//	         face-api does ([Pixels])
//	Features [N, 7, 7, 512] the backbone's last activations (after ReLU)
//	Pooled   [N, 512] their average (face-api's 7×7 avgPool)
//	Age      [N] age in years
//	GenderLogits [N, 2], Gender [N, 2] probabilities (male, female)
package faceapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/agegender/agegender/interop/tfjs"
)

// Node names of the graph [Load] returns.
const (
	Input        = "input"
	Features     = "features"
	Pooled       = "pooled"
	Age          = "age"
	GenderLogits = "gender_logits"
	Gender       = "gender"
)

// Size is the side of the net's square input (TinyXception.forwardInput's
// toBatchTensor(112)).
const Size = 112

// MeanRGB is the per-channel mean face-api subtracts from the 0..255 RGB
// input before dividing by 255 (TinyXception.ts).
var MeanRGB = [3]float32{122.782, 117.001, 104.298}

// ManifestName is the weights manifest in the npm package's model folder.
const ManifestName = "age_gender_model-weights_manifest.json"

// middleBlocks is the number of TinyXception main blocks of AgeGenderNet
// (new TinyXception(2)).
const middleBlocks = 2

// Generated file names inside the overlay Load reads through; they cannot
// clash with the package's files, which have no such prefix.
const (
	graphName  = "agegender-faceapi-age-gender.json"
	constsName = "agegender-faceapi-consts.bin"
)

// ModelDir returns the model folder inside an installed npm package
// folder (…/node_modules/@vladmandic/face-api).
func ModelDir(packageDir string) string { return filepath.Join(packageDir, "model") }

// Load reads face-api's age/gender net from dir, the model folder of the
// npm package (see [ModelDir]; it holds [ManifestName] and
// age_gender_model.bin). Errors name the file and what is wrong: a missing
// folder or manifest says to install the package, a manifest of another
// net names the missing or misshapen weight, a truncated shard names the
// shard and its expected size.
func Load(dir string) (*tfjs.Graph, error) {
	mpath := filepath.Join(dir, ManifestName)
	st, err := os.Stat(mpath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("faceapi: %s: %w (install the npm package @vladmandic/face-api — bench/faceapi.sh does, in bench/faceapi/node_modules — and give its model folder)", mpath, err)
		}
		return nil, fmt.Errorf("faceapi: %w", err)
	}
	if st.Size() > tfjs.MaxJSONBytes {
		return nil, fmt.Errorf("faceapi: %s: %d bytes, more than the limit of %d", mpath, st.Size(), tfjs.MaxJSONBytes)
	}
	raw, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("faceapi: %w", err)
	}
	var manifest []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("faceapi: %s: not a TF.js weights manifest (a JSON list of groups): %w", mpath, err)
	}
	if err := checkManifest(manifest); err != nil {
		return nil, fmt.Errorf("faceapi: %s: %w", mpath, err)
	}
	nodes, consts, constBytes := architecture()
	group, err := json.Marshal([]any{consts})
	if err != nil {
		return nil, err
	}
	model, err := graphModel(nodes, json.RawMessage(concatGroups(raw, group))) // face-api's groups, then ours
	if err != nil {
		return nil, err
	}
	fsys := overlay{base: os.DirFS(dir), files: fstest.MapFS{graphName: {Data: model}, constsName: {Data: constBytes}}}
	g, err := tfjs.LoadFS(fsys, graphName)
	if err != nil {
		// tfjs names the generated graph; the user knows the manifest.
		return nil, errors.New("faceapi: " + strings.ReplaceAll(err.Error(), "tfjs: "+graphName, mpath))
	}
	g.Path = mpath
	return g, nil
}

// Topology returns the graph [Load] builds as a TF.js model.json with an
// empty weights manifest: the form in which a model file stores a trunk's
// graph (model.Trunk.Graph), the weights travelling as variables. Its
// Const nodes are the weights of face-api's manifest and the constants
// Load adds (the float32 "normalize/mean_rgb" and "normalize/255", the
// int32 "pool/axes" and "fc/age/shape"), all in the weights of Load's
// graph.
func Topology() (json.RawMessage, error) {
	nodes, _, _ := architecture()
	return graphModel(nodes, json.RawMessage("[]"))
}

// graphModel writes a TF.js graph-model JSON.
func graphModel(nodes []tfjs.NodeDef, manifest json.RawMessage) ([]byte, error) {
	return json.Marshal(map[string]any{
		"format":          "graph-model",
		"generatedBy":     "agegender interop/faceapi from face-api's AgeGenderNet (TinyXception.ts, AgeGenderNet.ts)",
		"modelTopology":   map[string]any{"node": nodes},
		"weightsManifest": manifest,
	})
}

// checkManifest refuses a manifest that lacks one of the net's weights or
// gives it another shape, naming the weight, before anything is built.
func checkManifest(groups []map[string]json.RawMessage) error {
	have := map[string][]int{}
	for i, g := range groups {
		var ws []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
		}
		if err := json.Unmarshal(g["weights"], &ws); err != nil {
			return fmt.Errorf("group %d: weights: %w", i, err)
		}
		for _, w := range ws {
			have[w.Name] = w.Shape
		}
	}
	for name, want := range weightShapes() {
		got, ok := have[name]
		if !ok {
			return fmt.Errorf("no weight %q: not face-api's age/gender net", name)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("weight %q has shape %v, want %v: not face-api's age/gender net", name, got, want)
		}
	}
	return nil
}

// concatGroups joins two JSON lists.
func concatGroups(a, b []byte) []byte {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	inner := bytes.TrimSpace(a[1 : len(a)-1])
	out := append([]byte{'['}, inner...)
	if len(inner) > 0 {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}

// --- the architecture, as GraphDef nodes ----------------------------------

// constWeight is a weights-manifest entry of the generated constants.
type constWeight struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

// graphBuilder collects nodes and the structural constants (mean, divisor,
// axes, shapes) that the generated shard holds.
type graphBuilder struct {
	tfjs.GraphDef
	consts []constWeight
	data   bytes.Buffer
}

// weight declares a Const node for a weight of face-api's manifest.
func (b *graphBuilder) weight(name string) string { return b.Add(name, "Const", nil) }

func (b *graphBuilder) constF32(name string, shape []int, v ...float32) string {
	b.consts = append(b.consts, constWeight{Name: name, Shape: shape, DType: "float32"})
	for _, x := range v {
		binary.Write(&b.data, binary.LittleEndian, math.Float32bits(x))
	}
	return b.Add(name, "Const", nil)
}

func (b *graphBuilder) constI32(name string, shape []int, v ...int32) string {
	b.consts = append(b.consts, constWeight{Name: name, Shape: shape, DType: "int32"})
	for _, x := range v {
		binary.Write(&b.data, binary.LittleEndian, x)
	}
	return b.Add(name, "Const", nil)
}

func (b *graphBuilder) relu(name, x string) string { return b.Add(name, "Relu", nil, x) }

// conv is TinyXception's conv: Conv2D SAME with the given stride, plus bias.
func (b *graphBuilder) conv(prefix, x string, stride int) string {
	y := b.Add(prefix+"/Conv2D", "Conv2D", map[string]any{"strides": tfjs.IntsAttr(1, stride, stride, 1), "padding": tfjs.StringAttr("SAME")}, x, b.weight(prefix+"/filters"))
	return b.Add(prefix+"/BiasAdd", "BiasAdd", nil, y, b.weight(prefix+"/bias"))
}

// sepConv is depthwiseSeparableConv: tf.separableConv2d (depthwise 3×3
// SAME, stride 1, then pointwise 1×1) plus bias.
func (b *graphBuilder) sepConv(prefix, x string) string {
	d := b.Add(prefix+"/depthwise", "DepthwiseConv2dNative", map[string]any{"strides": tfjs.IntsAttr(1, 1, 1, 1), "padding": tfjs.StringAttr("SAME")}, x, b.weight(prefix+"/depthwise_filter"))
	p := b.Add(prefix+"/pointwise", "Conv2D", map[string]any{"strides": tfjs.IntsAttr(1, 1, 1, 1), "padding": tfjs.StringAttr("VALID")}, d, b.weight(prefix+"/pointwise_filter"))
	return b.Add(prefix+"/BiasAdd", "BiasAdd", nil, p, b.weight(prefix+"/bias"))
}

// reductionBlock is TinyXception.ts's reductionBlock.
func (b *graphBuilder) reductionBlock(prefix, x string, activate bool) string {
	out := x
	if activate {
		out = b.relu(prefix+"/relu_in", x)
	}
	out = b.sepConv(prefix+"/separable_conv0", out)
	out = b.sepConv(prefix+"/separable_conv1", b.relu(prefix+"/relu0", out))
	out = b.Add(prefix+"/MaxPool", "MaxPool", map[string]any{"ksize": tfjs.IntsAttr(1, 3, 3, 1), "strides": tfjs.IntsAttr(1, 2, 2, 1), "padding": tfjs.StringAttr("SAME")}, out)
	return b.Add(prefix+"/add", "AddV2", nil, out, b.conv(prefix+"/expansion_conv", x, 2))
}

// mainBlock is TinyXception.ts's mainBlock.
func (b *graphBuilder) mainBlock(prefix, x string) string {
	out := b.sepConv(prefix+"/separable_conv0", b.relu(prefix+"/relu0", x))
	out = b.sepConv(prefix+"/separable_conv1", b.relu(prefix+"/relu1", out))
	out = b.sepConv(prefix+"/separable_conv2", b.relu(prefix+"/relu2", out))
	return b.Add(prefix+"/add", "AddV2", nil, out, x)
}

// architecture returns AgeGenderNet's nodes, the manifest group of the
// generated constants and their shard.
func architecture() ([]tfjs.NodeDef, map[string]any, []byte) {
	b := &graphBuilder{}
	x := b.Add(Input, "Placeholder", map[string]any{
		"dtype": map[string]any{"type": "DT_FLOAT"},
		"shape": map[string]any{"shape": map[string]any{"dim": []map[string]string{{"size": "-1"}, {"size": "112"}, {"size": "112"}, {"size": "3"}}}},
	})
	// normalize(x, meanRgb).div(255)
	x = b.Add("normalize/sub", "Sub", nil, x, b.constF32("normalize/mean_rgb", []int{3}, MeanRGB[:]...))
	x = b.Add("normalize/div", "RealDiv", nil, x, b.constF32("normalize/255", []int{}, 255))
	out := b.relu("entry_flow/relu", b.conv("entry_flow/conv_in", x, 2))
	out = b.reductionBlock("entry_flow/reduction_block_0", out, false)
	out = b.reductionBlock("entry_flow/reduction_block_1", out, true)
	for i := range middleBlocks {
		out = b.mainBlock(fmt.Sprintf("middle_flow/main_block_%d", i), out)
	}
	out = b.reductionBlock("exit_flow/reduction_block", out, true)
	out = b.relu(Features, b.sepConv("exit_flow/separable_conv", out))
	// avgPool([7, 7], [2, 2], 'valid') of a 7×7 map is its mean.
	pooled := b.Add(Pooled, "Mean", nil, out, b.constI32("pool/axes", []int{2}, 1, 2))
	age := b.Add("fc/age/BiasAdd", "BiasAdd", nil, b.Add("fc/age/MatMul", "MatMul", nil, pooled, b.weight("fc/age/weights")), b.weight("fc/age/bias"))
	b.Add(Age, "Reshape", nil, age, b.constI32("fc/age/shape", []int{1}, -1))
	logits := b.Add(GenderLogits, "BiasAdd", nil, b.Add("fc/gender/MatMul", "MatMul", nil, pooled, b.weight("fc/gender/weights")), b.weight("fc/gender/bias"))
	b.Add(Gender, "Softmax", nil, logits)
	group := map[string]any{"paths": []string{constsName}, "weights": b.consts}
	return b.Node, group, b.data.Bytes()
}

// weightShapes lists the weights of face-api's manifest the architecture
// uses, with their shapes.
func weightShapes() map[string][]int {
	w := map[string][]int{
		"entry_flow/conv_in/filters": {3, 3, 3, 32}, "entry_flow/conv_in/bias": {32},
		"fc/age/weights": {512, 1}, "fc/age/bias": {1},
		"fc/gender/weights": {512, 2}, "fc/gender/bias": {2},
	}
	sep := func(p string, in, out int) {
		w[p+"/depthwise_filter"] = []int{3, 3, in, 1}
		w[p+"/pointwise_filter"] = []int{1, 1, in, out}
		w[p+"/bias"] = []int{out}
	}
	red := func(p string, in, out int) {
		sep(p+"/separable_conv0", in, out)
		sep(p+"/separable_conv1", out, out)
		w[p+"/expansion_conv/filters"] = []int{1, 1, in, out}
		w[p+"/expansion_conv/bias"] = []int{out}
	}
	red("entry_flow/reduction_block_0", 32, 64)
	red("entry_flow/reduction_block_1", 64, 128)
	for i := range middleBlocks {
		for j := range 3 {
			sep(fmt.Sprintf("middle_flow/main_block_%d/separable_conv%d", i, j), 128, 128)
		}
	}
	red("exit_flow/reduction_block", 128, 256)
	sep("exit_flow/separable_conv", 256, 512)
	return w
}

// --- an fs.FS with the generated files over the package's folder ----------

type overlay struct {
	base  fs.FS
	files fstest.MapFS
}

func (o overlay) Open(name string) (fs.File, error) {
	if _, ok := o.files[name]; ok {
		return o.files.Open(name)
	}
	return o.base.Open(name)
}
