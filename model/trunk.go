package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/agegender/agegender/interop/faceapi"
	"github.com/agegender/agegender/interop/tfjs"
	"github.com/agegender/agegender/interop/vggface"
	"github.com/agegender/agegender/model/modelfile"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	mlx "github.com/gomlx/gomlx/ml/model"
)

// Trunk is a pretrained network's body, imported from a TensorFlow.js
// graph model (package interop/tfjs; face-api's net and VGG-Face are
// written as one by interop/faceapi and interop/vggface), that a [Config]
// puts under trainable heads. Its graph travels inside the model file (Graph: the model.json
// without its weights manifest) and its weights are ordinary variables of
// the net's store under the scope "trunk" (named by [tfjs.VariableName]),
// so a model file holds the whole network, training can fine-tune any of
// it, and every backend runs it.
type Trunk struct {
	// Name is the trunk's short name (see [TrunkNames]).
	Name string `json:"name"`
	// Input is the graph's image placeholder; Size its side (square RGB,
	// NHWC). A pixel value p on the 0..255 scale is fed as p*Scale+Offset.
	Input  string  `json:"input"`
	Size   int     `json:"size"`
	Scale  float32 `json:"scale"`
	Offset float32 `json:"offset"`
	// Output is the node whose value [N, Dim] the heads read.
	Output string `json:"output"`
	Dim    int    `json:"dim"`
	// Unscaled marks features far from unit scale (MobileFaceNet's
	// embedding before its L2 normalisation): heads trained on this trunk
	// read them standardised (Config.Standardize).
	Unscaled bool `json:"unscaled,omitempty"`
	// Graph is the trunk's model.json with an empty weights manifest.
	Graph json.RawMessage `json:"graph,omitempty"`
	// Cut, when set, is an inner node whose activations (of shape
	// CutShape per image, computed once) a training run may feed instead
	// of images; Tune lists the name prefixes of the weights after it that
	// such a run trains (the trunk's last blocks), the others staying
	// frozen.
	Cut      string   `json:"cut,omitempty"`
	CutShape []int    `json:"cut_shape,omitempty"`
	Tune     []string `json:"tune,omitempty"`
	// Fixed lists the name prefixes of constants of the graph that are
	// preprocessing, not weights (a mean to subtract, a divisor): no
	// training changes them, not even of the whole trunk.
	Fixed []string `json:"fixed,omitempty"`
	// Ints holds the graph's int32 constants (axes, shapes), which are
	// part of its structure rather than weights.
	Ints map[string]IntConst `json:"ints,omitempty"`
}

// IntConst is an int32 constant of a trunk graph.
type IntConst struct {
	Shape  []int   `json:"shape"`
	Values []int32 `json:"values"`
}

// knownTrunk is a pretrained network that can serve as a trunk: its
// description, and read, which reads it with its weights from the folder
// given to [ImportTrunk] and returns it with its topology (for
// Trunk.Graph), setting the fields of t that depend on the file (the
// sizes of VGG-Face).
type knownTrunk struct {
	Trunk
	read func(t *Trunk, dir string) (*tfjs.Graph, json.RawMessage, error)
	// file is the file the folder must hold ([CheckTrunkFolder]).
	file string
}

// tfjsFile reads a TF.js graph model, the file name in the folder.
func tfjsFile(name string) func(*Trunk, string) (*tfjs.Graph, json.RawMessage, error) {
	return func(_ *Trunk, dir string) (*tfjs.Graph, json.RawMessage, error) {
		path := filepath.Join(dir, name)
		g, err := tfjs.Load(path)
		if err != nil {
			return nil, nil, err
		}
		topo, err := withoutWeights(path)
		return g, topo, err
	}
}

// faceAPIFolder says which folder holds face-api's net.
const faceAPIFolder = "the model folder of the npm package @vladmandic/face-api (bench/faceapi.sh installs it: bench/faceapi/node_modules/@vladmandic/face-api/model)"

// readFaceAPI reads face-api's age/gender net from its npm package's
// model folder.
func readFaceAPI(_ *Trunk, dir string) (*tfjs.Graph, json.RawMessage, error) {
	g, err := faceapi.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (train --models takes %s)", err, faceAPIFolder)
	}
	topo, err := faceapi.Topology()
	return g, topo, err
}

// readVGGFace reads VGG-Face from the folder of its Caffe release and
// sets t's sizes from its weights.
func readVGGFace(t *Trunk, dir string) (*tfjs.Graph, json.RawMessage, error) {
	g, err := vggface.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (pass that folder, the one holding %s, as train --models DIR)", err, vggface.WeightsFile)
	}
	geo, err := vggface.GeometryOf(g)
	if err != nil {
		return nil, nil, err
	}
	t.Size, t.Dim, t.CutShape = geo.Side, geo.Dim, geo.Pool5
	topo, err := vggface.Topology(geo.Side)
	return g, topo, err
}

// knownTrunks are the pretrained face networks of ../shared/models/tfjs
// (see its README), face-api's age/gender net and VGG-Face, that can
// serve as trunks, by name.
var knownTrunks = map[string]knownTrunk{
	// HSE FaceRec's MobileNet (v1, α=1) age/gender network as shipped by
	// vladmandic/human: its input is on the 0..255 scale, and the heads
	// read its 1024-d global average pool (the input of its own 256-d
	// "feats" layer). Its last depthwise-separable block (7×7×1024) is
	// cut and tuned with the heads in stage 2. faceres-deep is the same
	// graph with other weights, stored as float32: not a float32 copy of
	// faceres (59 of its 128 tensors differ by over 1 % of their largest
	// value, and so do the features; TestKnownTrunks logs them).
	"faceres": {Trunk{Name: "faceres", Input: "input_1", Size: 224, Scale: 1, Output: "global_pooling/Mean", Dim: 1024,
		Cut: "conv_pw_12_relu/clip_by_value", CutShape: []int{7, 7, 1024}, Tune: faceresLastBlock}, tfjsFile("faceres.json"), "faceres.json"},
	"faceres-deep": {Trunk{Name: "faceres-deep", Input: "input_1", Size: 224, Scale: 1, Output: "global_pooling/Mean", Dim: 1024,
		Cut: "conv_pw_12_relu/clip_by_value", CutShape: []int{7, 7, 1024}, Tune: faceresLastBlock}, tfjsFile("faceres-deep.json"), "faceres-deep.json"},
	// GEAR (github.com/Udolf15/GEAR-Predictor, converted by vladmandic):
	// six 3×3 VALID convolutions with ReLU, each of the last five followed
	// by a batch norm and a 2×2 max pool, on 198×198 RGB on the 0..1 scale
	// (measured: its own gender output is right on 31 of 32 UTKFace
	// faces at p/255 and calls almost every face female at p;
	// TestGearInputScale), then race, gender
	// and age heads. Our heads read its 192-d global max pool; its last
	// block (conv2d_6 with batch_normalization_5, on the 10×10×160
	// activations of max_pooling2d_4) is cut and tuned in stage 2.
	"gear": {Trunk{Name: "gear", Input: "input_1", Size: 198, Scale: 1.0 / 255,
		Output: gearScope + "global_max_pooling2d_1/Max", Dim: 192,
		Cut: gearScope + "max_pooling2d_4/MaxPool", CutShape: []int{10, 10, 160},
		Tune: []string{gearScope + "conv2d_6/", gearScope + "batch_normalization_5/"}}, tfjsFile("gear.json"), "gear.json"},
	// face-api's age/gender net (@vladmandic/face-api on npm, MIT): a
	// TinyXception on 112×112 RGB that subtracts its mean RGB and divides
	// by 255 itself (so it is fed the 0..255 scale), built by
	// interop/faceapi from the package's weights. The heads read its
	// 512-d average pool; its last separable convolution (256→512, on the
	// 7×7×256 output of the exit reduction block) is cut and tuned in
	// stage 2. Its folder is the package's model folder, not
	// ../shared/models/tfjs: bench/faceapi.sh installs the package in
	// bench/faceapi/node_modules.
	FaceAPI: {Trunk{Name: FaceAPI, Input: faceapi.Input, Size: faceapi.Size, Scale: 1,
		Output: faceapi.Pooled, Dim: 512,
		Cut: "exit_flow/reduction_block/add", CutShape: []int{7, 7, 256}, Tune: []string{"exit_flow/separable_conv/"},
		Fixed: []string{"normalize/"}}, readFaceAPI, faceapi.ManifestName},
	// MobileFaceNet (InsightFace-style identity network): inputs p/127.5-1,
	// heads read its 192-d embedding before the L2 normalisation.
	// Its last block (the global depthwise 7×7 convolution and the 1×1
	// convolutions to the embedding, scope "MobileFaceNet/Logits") is cut
	// and tuned in stage 2.
	"mobilefacenet": {Trunk{Name: "mobilefacenet", Input: "img_inputs", Size: 112, Scale: 1 / 127.5, Offset: -1,
		Output: "MobileFaceNet/Logits/SpatialSqueeze", Dim: 192, Unscaled: true,
		Cut: "MobileFaceNet/MobileFaceNet/Conv2d_7/add", CutShape: []int{7, 7, 512}, Tune: []string{"MobileFaceNet/Logits/"}}, tfjsFile("mobilefacenet.json"), "mobilefacenet.json"},
	// VGG-Face (Parkhi et al. 2015; VGG-16 trained to tell 2622
	// identities), for users who have its Caffe release: read by
	// interop/vggface from VGG_FACE.caffemodel in the folder given
	// (vgg_face_caffe.tar.gz, unpacked; it is not in ../shared). It is fed
	// RGB on the 0..255 scale and subtracts its mean itself; the heads
	// read fc7 after its ReLU (4096-d). fc6 and fc7 are tuned in stage 2,
	// on the cached pool5 (7×7×512). Size, Dim and CutShape are those of
	// the released net and are read from the weights on import, so a
	// smaller net of the same shape (the tests') works too.
	VGGFace: {Trunk{Name: VGGFace, Input: vggface.Input, Size: vggface.Size, Scale: 1,
		Output: vggface.FC7, Dim: 4096, Cut: vggface.Pool5, CutShape: []int{7, 7, 512},
		Tune: []string{"fc6/", "fc7/"}, Fixed: []string{"preprocess/"}}, readVGGFace, vggface.WeightsFile},
}

// VGGFace is the name of VGG-Face as a trunk.
const VGGFace = "vggface"

// FaceAPI is the name of face-api's age/gender net as a trunk.
const FaceAPI = "faceapi"

// gearScope prefixes every node of gear's graph.
const gearScope = "StatefulPartitionedCall/model_1/"

// faceresLastBlock are the weights of faceres's last depthwise-separable
// block (depthwise 3×3 and pointwise 1×1 convolutions with their folded
// batch norms), not the ReLU6 bounds.
var faceresLastBlock = []string{"conv_dw_13/", "conv_dw_13_bn/", "conv_pw_13/", "conv_pw_13_bn/"}

// Tuned reports whether training a net that feeds Cut activations trains
// the trunk weight named name (its TF.js name).
func (t Trunk) Tuned(name string) bool { return hasAnyPrefix(name, t.Tune) }

// hasAnyPrefix reports whether name starts with one of prefixes.
func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TrunkNames lists the trunks [ImportTrunk] knows, sorted.
func TrunkNames() []string {
	var out []string
	for k := range knownTrunks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TrunkScope is the store scope, inside [Scope], of a trunk's weights.
const TrunkScope = "trunk"

// ImportTrunk reads the named pretrained trunk from dir (a folder of TF.js
// graph models such as ../shared/models/tfjs; for [FaceAPI], the model
// folder of the npm package @vladmandic/face-api; for [VGGFace], the
// unpacked Caffe release, holding VGG_FACE.caffemodel) and returns its
// description and its weights as model-file tensors named as the net's
// variables (under Scope/TrunkScope), and the graph with its weights,
// which runs the trunk as imported (feature extraction:
// [tfjs.Graph.NewExec]); the tensors share the graph's memory, so a
// caller that uses both holds the weights once. An unknown name gives the
// list of known ones; a missing, truncated or foreign file gives an error
// naming the file.
func ImportTrunk(dir, name string) (Trunk, []modelfile.Tensor, *tfjs.Graph, error) {
	k, err := lookupTrunk(name)
	if err != nil {
		return Trunk{}, nil, nil, err
	}
	t, g, topo, err := k.load(dir)
	if err != nil {
		return Trunk{}, nil, nil, err
	}
	path := g.Path
	t.Graph = topo
	var ts []modelfile.Tensor
	for wn, w := range g.Weights {
		full := "/" + Scope + "/" + TrunkScope + "/" + tfjs.VariableName(wn)
		switch w.DType {
		case tfjs.Float32:
			ts = append(ts, modelfile.Tensor{Name: full, Dims: append([]int{}, w.Shape...), Store: modelfile.Float32, F32: w.F32})
		case tfjs.Int32:
			if t.Ints == nil {
				t.Ints = map[string]IntConst{}
			}
			t.Ints[wn] = IntConst{Shape: append([]int{}, w.Shape...), Values: w.I32}
		default:
			return Trunk{}, nil, nil, fmt.Errorf("model: %s: weight %s has dtype %s, which a trunk cannot hold", path, wn, w.DType)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return t, ts, g, nil
}

// CheckTrunkFolder checks, without reading it, that dir holds the named
// trunk's main file (faceres.json, face-api's weights manifest,
// VGG_FACE.caffemodel, …), so that a command can refuse a wrong --models
// folder before it loads a data set. Its error names the file and says
// what the folder should be.
func CheckTrunkFolder(dir, name string) error {
	k, err := lookupTrunk(name)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, k.file)
	if _, err := os.Stat(path); err != nil {
		var hint string
		switch name {
		case FaceAPI:
			hint = faceAPIFolder
		case VGGFace:
			hint = "the unpacked Caffe release of VGG-Face (" + vggface.Release + "), which is not in ../shared"
		default:
			hint = "../shared/models/tfjs"
		}
		return fmt.Errorf("model: trunk %s: %s not found; give --models the folder that holds %s: %s (by default models/tfjs beside the data folder, $AGEGENDER_DATA)", name, path, k.file, hint)
	}
	return nil
}

// lookupTrunk returns the known trunk called name, or an error listing the
// known ones.
func lookupTrunk(name string) (knownTrunk, error) {
	k, ok := knownTrunks[name]
	if !ok {
		return knownTrunk{}, fmt.Errorf("model: unknown trunk %q; known trunks: %s", name, strings.Join(TrunkNames(), ", "))
	}
	return k, nil
}

// load reads the trunk's graph with its weights from dir, checks that it
// has the trunk's nodes, and returns the trunk's description (with the
// sizes of the file, for VGG-Face), the graph and its topology (the
// model.json without weights, for Trunk.Graph).
func (k knownTrunk) load(dir string) (Trunk, *tfjs.Graph, json.RawMessage, error) {
	t := k.Trunk
	g, topo, err := k.read(&t, dir)
	if err != nil {
		return Trunk{}, nil, nil, err
	}
	for _, n := range []string{t.Input, t.Output, t.Cut} {
		if n != "" && g.Node(n) == nil {
			return Trunk{}, nil, nil, fmt.Errorf("model: %s has no node %q; it is not the %s graph", g.Path, n, t.Name)
		}
	}
	return t, g, topo, nil
}

// withoutWeights returns the model.json at path with an empty weights
// manifest: the graph alone.
func withoutWeights(path string) (json.RawMessage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m["weightsManifest"] = json.RawMessage("[]")
	return json.Marshal(m)
}

// graph parses t.Graph.
func (t Trunk) graph() (*tfjs.Graph, error) {
	if len(t.Graph) == 0 {
		return nil, fmt.Errorf("model: trunk %q carries no graph", t.Name)
	}
	name := t.Name + ".json"
	g, err := tfjs.LoadFS(fstest.MapFS{name: {Data: t.Graph}}, name)
	if err != nil {
		return nil, err
	}
	if g.Weights == nil {
		g.Weights = map[string]*tfjs.Tensor{}
	}
	for name, c := range t.Ints {
		g.Weights[name] = &tfjs.Tensor{Name: name, DType: tfjs.Int32, Shape: c.Shape, I32: c.Values}
	}
	return g, nil
}

// build runs the trunk on images [N, Size, Size, 3] (0..255 scale) and
// returns its output [N, Dim]. Its weights are the variables of scope,
// which must exist (loaded from a model file, or created by [InitTrunk]);
// frozen marks them untrainable, except the Tuned ones when the input is
// the Cut activations (fromCut); native expresses its convolutions with
// the backend's own (grouped) convolution, which has no gradient but runs
// inference with far less memory on ONNX Runtime. A frozen trunk in a
// graph that does not train is built for inference only (see below).
func (t Trunk) build(scope *mlx.Scope, images *Node, frozen, native, fromCut bool) *Node {
	g, err := t.graph()
	if err != nil {
		panic(err)
	}
	x := images
	in := t.Input
	if fromCut {
		in = t.Cut
	} else if t.Scale != 1 || t.Offset != 0 {
		x = AddScalar(MulScalar(x, float64(t.Scale)), float64(t.Offset))
	}
	// A graph that only runs the trunk forward (prediction, evaluation,
	// feature extraction, export) is built for speed: batch norms folded,
	// ReLU6 as one clamp, depthwise convolutions as such
	// (tfjs.BuildOptions.Inference). It still reads the weights' current
	// values, so an evaluation graph follows a training run; a Predictor's
	// store holds them as constants (Store.WithVariableAsConst), which ONNX
	// Runtime pre-packs and fuses with their bias and clamp: there the
	// convolutions are the runtime's own at every batch size (BENCHMARKS.md
	// §8).
	inference := frozen && !scope.IsTraining(images.Graph())
	if inference && scope.Store().VariablesAsConst() && strings.HasPrefix(images.Graph().Backend().Name(), "onnx") {
		native = true
	}
	outs, err := g.BuildWith(images.Graph(), map[string]*Node{in: x}, []string{t.Output}, tfjs.BuildOptions{
		Scope:       scope,
		AsVariables: func(string) bool { return true },
		Frozen: func(name string) bool {
			return hasAnyPrefix(name, t.Fixed) || (frozen && !(fromCut && t.Tuned(name)))
		},
		NativeConv: native,
		Inference:  inference,
	})
	if err != nil {
		panic(fmt.Errorf("model: trunk %s: %w", t.Name, err))
	}
	y := outs[0]
	if d := y.Shape().Dimensions; len(d) != 2 || d[1] != t.Dim {
		y = Reshape(y, d[0], -1)
		if y.Shape().Dimensions[1] != t.Dim {
			panic(fmt.Errorf("model: trunk %s's %s has shape %s, want [N, %d]", t.Name, t.Output, outs[0].Shape(), t.Dim))
		}
	}
	return y
}

// check verifies that weights hold every float weight of the trunk's graph
// with the shape it needs, so that a truncated or foreign model file is
// refused when loaded, naming the file and the tensor.
func (t Trunk) check(path string, weights []modelfile.Tensor) error {
	g, err := t.graph()
	if err != nil {
		return fmt.Errorf("model: %s: %w", path, err)
	}
	have := make(map[string]bool, len(weights))
	for _, w := range weights {
		have[w.Name] = true
	}
	for _, n := range g.Nodes {
		if n.Op != "Const" || g.Weights[n.Name] != nil {
			continue
		}
		full := "/" + Scope + "/" + TrunkScope + "/" + tfjs.VariableName(n.Name)
		if !have[full] {
			return fmt.Errorf("model: %s: the %s trunk's weight %s (tensor %s) is missing; the file is truncated or from another network", path, t.Name, n.Name, full)
		}
	}
	return nil
}
