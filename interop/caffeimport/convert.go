// Package caffeimport converts Caffe nets read by package interop/caffe
// into agegender models: the paper's age_net and gender_net (Levi &
// Hassner 2015; agegender net "origin") and VGG-Face (Parkhi et al. 2015;
// net "vgg16"), with their trained weights.
//
// Caffe stores images as NCHW in BGR order; agegender runs NHWC RGB, so
// the conversion transposes every kernel, flips the first convolution's
// input channels and reorders the first fully connected layer's inputs
// from CHW to HWC order (the layout helpers of package caffe).
//
// (To use VGG-Face as a pretrained trunk under trainable heads instead,
// see package interop/vggface.)
package caffeimport

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
)

// GenderClasses and AgeClasses are the outputs of the paper's gender_net
// and age_net, in the order of their fc8 rows (Caffe's labels: 0 = male,
// 1 = female; age groups ascending). They match agegender's class order.
var (
	GenderClasses = []string{"m", "f"}
	AgeClasses    = []string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}
)

// VGGFaceConvLayers returns the names of VGG-16's 13 convolutions,
// conv1_1 … conv5_3: the layers transfer learning usually freezes.
func VGGFaceConvLayers() []string {
	var out []string
	for i, block := range model.VGG16Blocks {
		for j := range block {
			out = append(out, fmt.Sprintf("conv%d_%d", i+1, j+1))
		}
	}
	return out
}

// Options controls [Convert].
type Options struct {
	// Task is "gender" or "age": the classes are named GenderClasses and
	// AgeClasses and their count is checked (a net checked with another
	// label gets class names "0", "1", …, but is not made into a model).
	Task string
	// Mean is the per-channel mean (RGB, 0..255) to subtract from inputs:
	// see [caffe.MeanRGB] for a Caffe mean file, [caffe.VGGFaceMeanRGB] for VGG-Face.
	Mean [3]float32
	// Classes, when positive and different from the net's last layer,
	// replaces that layer for transfer learning: its weights are not
	// imported, so agegender initialises a fresh classifier with Classes
	// outputs on first use.
	Classes int
	// Frozen names layers (e.g. [VGGFaceConvLayers]) whose weights the
	// caller means to keep fixed during training. They must be imported
	// layers; their variable names are recorded in Info.Training as
	// {"frozen": [...]} and returned by [FrozenVariables].
	Frozen []string
	// Resize is the side images are resized to before the center crop;
	// 0 means 256, as in both papers.
	Resize int
}

// ToModel converts one of the paper's nets (age_net or gender_net, or a
// VGG-Face network) with its trained weights into an agegender model.
// mean is the RGB mean to subtract (see [caffe.MeanRGB]). It is [Convert] with
// default options.
func ToModel(def *caffe.NetDef, w *caffe.Weights, task string, mean [3]float32) (*model.Model, error) {
	return Convert(def, w, Options{Task: task, Mean: mean})
}

// FrozenVariables returns the agegender variable names ("/net/conv1/weights",
// "/net/conv1/biases", …) of the named layers.
func FrozenVariables(layers []string) []string {
	var out []string
	for _, l := range layers {
		out = append(out, "/"+model.Scope+"/"+l+"/weights", "/"+model.Scope+"/"+l+"/biases")
	}
	return out
}

// step is one layer of an architecture agegender can run, as it must
// appear in the Caffe definition.
type step struct {
	typ                string // "Convolution", "Pooling", "LRN", "ReLU", "InnerProduct"
	name               string // for Convolution and InnerProduct: the layer name
	out, k, stride, pd int    // num_output, kernel, stride, pad
}

func (s step) String() string {
	switch s.typ {
	case "Convolution":
		return fmt.Sprintf("Convolution %q (%d outputs, %d×%d kernel, stride %d, pad %d)", s.name, s.out, s.k, s.k, s.stride, s.pd)
	case "Pooling":
		return fmt.Sprintf("Pooling (MAX %d×%d, stride %d)", s.k, s.k, s.stride)
	case "LRN":
		return "LRN (local_size 5, alpha 0.0001, beta 0.75)"
	case "InnerProduct":
		if s.out == 0 {
			return fmt.Sprintf("InnerProduct %q", s.name)
		}
		return fmt.Sprintf("InnerProduct %q (%d outputs)", s.name, s.out)
	}
	return s.typ
}

// architectures returns the layer sequences of the nets agegender can
// import, keyed by agegender net name. The last InnerProduct's width (0)
// is free: it sets the number of classes.
func architectures() map[string][]step {
	conv := func(name string, out, k, stride, pad int) []step {
		return []step{{typ: "Convolution", name: name, out: out, k: k, stride: stride, pd: pad}, {typ: "ReLU"}}
	}
	pool := func(k, s int) step { return step{typ: "Pooling", k: k, stride: s} }
	lrn := step{typ: "LRN"}
	fc := func(name string, out int, relu bool) []step {
		s := []step{{typ: "InnerProduct", name: name, out: out}}
		if relu {
			s = append(s, step{typ: "ReLU"})
		}
		return s
	}
	var origin []step
	origin = append(origin, conv("conv1", 96, 7, 4, 0)...)
	origin = append(origin, pool(3, 2), lrn)
	origin = append(origin, conv("conv2", 256, 5, 1, 2)...)
	origin = append(origin, pool(3, 2), lrn)
	origin = append(origin, conv("conv3", 384, 3, 1, 1)...)
	origin = append(origin, pool(3, 2))
	origin = append(origin, fc("fc6", 512, true)...)
	origin = append(origin, fc("fc7", 512, true)...)
	origin = append(origin, fc("fc8", 0, false)...)

	var vgg []step
	for i, block := range model.VGG16Blocks {
		for j, out := range block {
			vgg = append(vgg, conv(fmt.Sprintf("conv%d_%d", i+1, j+1), out, 3, 1, 1)...)
		}
		vgg = append(vgg, pool(2, 2))
	}
	vgg = append(vgg, fc("fc6", 4096, true)...)
	vgg = append(vgg, fc("fc7", 4096, true)...)
	vgg = append(vgg, fc("fc8", 0, false)...)
	return map[string][]step{"origin": origin, "vgg16": vgg}
}

// ignored lists layer types that do not change inference (Dropout,
// Softmax) or exist only in training definitions.
var ignored = map[string]bool{
	"Data": true, "ImageData": true, "MemoryData": true, "HDF5Data": true, "DummyData": true,
	"WindowData": true, "Input": true, "Dropout": true, "Softmax": true, "SoftmaxWithLoss": true,
	"Accuracy": true, "Silence": true, "Split": true, "Flatten": true,
}

// Convert converts a Caffe net and its weights into an agegender model.
//
// The definition must be one of the architectures agegender runs, layer
// for layer: the paper's net (conv1..conv3 with their pools and LRNs,
// fc6..fc8; agegender net "origin") or VGG-16 as released by VGG-Face
// (conv1_1..conv5_3, fc6..fc8; net "vgg16"). Dropout, softmax, data and
// loss layers are ignored, so train/val definitions work too. The input
// side comes from the definition's input shape or its data layer's
// crop_size (227 for origin, 224 for vgg16 when neither is given).
//
// The weights are rearranged from Caffe's layout to agegender's:
//
//   - convolution kernels [Cout, Cin, KH, KW] become [KH, KW, Cin, Cout];
//     the first convolution's input channels are reversed, because Caffe
//     nets read BGR images and agegender feeds RGB;
//   - inner-product weights [Out, In] become [In, Out];
//   - the first inner product's inputs are reordered: Caffe flattens the
//     last feature map [C, H, W] channel-major, agegender flattens
//     [H, W, C] channel-minor, so input c·H·W + h·W + w moves to
//     (h·W + w)·C + c.
func Convert(def *caffe.NetDef, w *caffe.Weights, opts Options) (*model.Model, error) {
	if def == nil || w == nil {
		return nil, fmt.Errorf("caffeimport: Convert needs a net definition and weights")
	}
	if opts.Task == "" {
		return nil, fmt.Errorf("caffeimport: no task given (want \"gender\", \"age\" or another label)")
	}
	net := "origin"
	if def.Layer("conv1_1") != nil {
		net = "vgg16"
	}
	arch := architectures()[net]

	// Match the definition's layers against the architecture.
	var got []caffe.LayerDef
	for _, l := range def.Layers {
		if !ignored[l.Type] {
			got = append(got, l)
		}
	}
	for i, want := range arch {
		if i >= len(got) {
			return nil, fmt.Errorf("caffeimport: net %q ends after %d layers; %s needs %s next", def.Name, len(got), net, want)
		}
		if err := matchStep(got[i], want); err != nil {
			return nil, fmt.Errorf("caffeimport: net %q is not agegender's %s: %w", def.Name, net, err)
		}
	}
	if len(got) > len(arch) {
		l := got[len(arch)]
		return nil, fmt.Errorf("caffeimport: net %q: unexpected %s layer %q after the last layer of %s", def.Name, l.Type, l.Name, net)
	}
	fc8 := def.Layer("fc8")
	classes := fc8.InnerProduct.NumOutput

	// Input side: declared input, else the data layer's crop, else the default.
	side := 227
	if net == "vgg16" {
		side = 224
	}
	if s, err := inputSide(def); err != nil {
		return nil, fmt.Errorf("caffeimport: net %q: %w", def.Name, err)
	} else if s > 0 {
		side = s
	}

	// Shapes through the convolutions, to size fc6's input.
	h, c := side, 3
	for _, s := range arch {
		switch s.typ {
		case "Convolution":
			h, c = ops.ConvOutSize(h, s.k, s.stride, s.pd), s.out
		case "Pooling":
			h = ops.PoolOutSize(h, s.k, s.stride)
		}
		if h < 1 {
			return nil, fmt.Errorf("caffeimport: net %q: input %d×%d is too small for %s", def.Name, side, side, net)
		}
		if s.typ == "InnerProduct" {
			break
		}
	}

	info := model.Info{
		Config: model.Config{Net: net, Classes: classes, Input: side},
		Spec:   prep.Spec{Resize: opts.Resize, Crop: side, Mean: opts.Mean},
	}
	if info.Resize == 0 {
		info.Resize = 256
	}
	replaceHead := opts.Classes > 0 && opts.Classes != classes
	if replaceHead {
		info.Config.Classes = opts.Classes
	}
	var err error
	if info.ClassNames, err = classNames(opts.Task, info.Config.Classes); err != nil {
		return nil, fmt.Errorf("caffeimport: net %q: %w", def.Name, err)
	}
	if err := info.Config.Validate(); err != nil {
		return nil, fmt.Errorf("caffeimport: net %q: %w", def.Name, err)
	}

	// Import the weights.
	m := &model.Model{Info: info}
	imported := map[string]bool{}
	cin, first := 3, true
	fcFirst := true
	for _, s := range arch {
		if s.typ != "Convolution" && s.typ != "InnerProduct" {
			continue
		}
		out := s.out
		if out == 0 {
			out = classes
		}
		skip := replaceHead && s.name == "fc8"
		l := w.Layer(s.name)
		if skip {
			break // the last layer: nothing more to import
		}
		if l == nil {
			return nil, fmt.Errorf("caffeimport: weights %q have no layer %q", w.Name, s.name)
		}
		var wDims, ourDims []int
		if s.typ == "Convolution" {
			wDims, ourDims = []int{out, cin, s.k, s.k}, []int{s.k, s.k, cin, out}
		} else {
			in := cin
			if fcFirst {
				in = h * h * c
			}
			wDims, ourDims = []int{out, in}, []int{in, out}
		}
		weights, bias, err := paramBlobs(l, wDims, def.Layer(s.name))
		if err != nil {
			return nil, fmt.Errorf("caffeimport: weights %q: %w", w.Name, err)
		}
		var t []float32
		switch {
		case s.typ == "Convolution":
			t = caffe.ConvKernelHWIO(weights.Data, out, cin, s.k, first && cin == 3)
		case fcFirst:
			t = caffe.InnerProductCHWToHWC(weights.Data, out, c, h, h)
		default:
			t = caffe.Transpose(weights.Data, out, cin)
		}
		m.Weights = append(m.Weights,
			modelfile.Tensor{Name: "/" + model.Scope + "/" + s.name + "/weights", Dims: ourDims, Store: modelfile.Float32, F32: t},
			modelfile.Tensor{Name: "/" + model.Scope + "/" + s.name + "/biases", Dims: []int{out}, Store: modelfile.Float32, F32: bias})
		imported[s.name] = true
		if s.typ == "InnerProduct" {
			fcFirst = false
		}
		cin, first = out, false
	}
	for _, t := range m.Weights {
		for _, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("caffeimport: weights %q: %s holds NaN or Inf", w.Name, t.Name)
			}
		}
	}

	for _, f := range opts.Frozen {
		if !imported[f] {
			return nil, fmt.Errorf("caffeimport: cannot freeze %q: not an imported layer of %s", f, net)
		}
	}
	prov := struct {
		Source string   `json:"source"`
		Net    string   `json:"caffe_net,omitempty"`
		Frozen []string `json:"frozen,omitempty"`
	}{Source: "caffe", Net: def.Name, Frozen: FrozenVariables(opts.Frozen)}
	if m.Info.Training, err = json.Marshal(prov); err != nil {
		return nil, err
	}
	if m.Info.Task, err = data.ParseTask(opts.Task); err != nil || m.Info.Task == data.TaskGenderAge {
		return nil, fmt.Errorf("caffeimport: task %q: a model file is for gender or age", opts.Task)
	}
	return m, nil
}

// matchStep checks that layer l is what the architecture expects.
func matchStep(l caffe.LayerDef, s step) error {
	bad := func(why string) error {
		return fmt.Errorf("layer %q (%s): %s; want %s", l.Name, l.Type, why, s)
	}
	if l.Type != s.typ {
		return bad("wrong type")
	}
	switch s.typ {
	case "Convolution":
		p := l.Conv
		if l.Name != s.name {
			return bad("wrong name")
		}
		if p.NumOutput != s.out || p.KernelH != s.k || p.KernelW != s.k || p.StrideH != s.stride ||
			p.StrideW != s.stride || p.PadH != s.pd || p.PadW != s.pd {
			return bad(fmt.Sprintf("got %d outputs, %d×%d kernel, stride %d×%d, pad %d×%d",
				p.NumOutput, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.PadH, p.PadW))
		}
		if p.Group != 1 {
			return bad(fmt.Sprintf("group %d (grouped convolutions are not supported)", p.Group))
		}
	case "Pooling":
		p := l.Pool
		if p.Pool != "MAX" || p.Global || p.KernelH != s.k || p.KernelW != s.k || p.StrideH != s.stride ||
			p.StrideW != s.stride || p.PadH != 0 || p.PadW != 0 {
			return bad(fmt.Sprintf("got %s %d×%d stride %d×%d pad %d×%d", p.Pool, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.PadH, p.PadW))
		}
	case "LRN":
		p := l.LRN
		if p.LocalSize != 5 || math.Abs(p.Alpha-1e-4) > 1e-12 || p.Beta != 0.75 || p.K != 1 || p.NormRegion != "ACROSS_CHANNELS" {
			return bad(fmt.Sprintf("got local_size %d alpha %g beta %g k %g %s", p.LocalSize, p.Alpha, p.Beta, p.K, p.NormRegion))
		}
	case "InnerProduct":
		if l.Name != s.name {
			return bad("wrong name")
		}
		if s.out != 0 && l.InnerProduct.NumOutput != s.out {
			return bad(fmt.Sprintf("got %d outputs", l.InnerProduct.NumOutput))
		}
	}
	return nil
}

// inputSide returns the side of the square input the definition declares
// (input shape [N, 3, S, S], or a data layer's crop_size), or 0.
func inputSide(def *caffe.NetDef) (int, error) {
	if len(def.Inputs) > 0 && len(def.Inputs[0].Shape) > 0 {
		s := def.Inputs[0].Shape
		if len(s) != 4 || s[1] != 3 || s[2] != s[3] {
			return 0, fmt.Errorf("input %q has shape %v; want [N, 3, S, S]", def.Inputs[0].Name, s)
		}
		return s[2], nil
	}
	for _, l := range def.Layers {
		if tp := l.Msg.Sub("transform_param"); tp != nil {
			if crop, err := cropSize(tp); err != nil || crop > 0 {
				return crop, err
			}
		}
	}
	return 0, nil
}

func classNames(task string, n int) ([]string, error) {
	var names []string
	switch task {
	case "gender":
		names = GenderClasses
	case "age":
		names = AgeClasses
	default:
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out, nil
	}
	if n != len(names) {
		return nil, fmt.Errorf("task %s has %d classes, the net's last layer has %d outputs (set Options.Classes to replace it)", task, len(names), n)
	}
	return slices.Clone(names), nil
}

// paramBlobs returns a layer's weights, checked against the Caffe shape
// want, and its bias (zeros when the definition has bias_term: false).
func paramBlobs(l *caffe.Layer, want []int, def *caffe.LayerDef) (*caffe.Blob, []float32, error) {
	hasBias := true
	if def != nil && def.Conv != nil {
		hasBias = def.Conv.BiasTerm
	}
	if def != nil && def.InnerProduct != nil {
		hasBias = def.InnerProduct.BiasTerm
	}
	nb := 1
	if hasBias {
		nb = 2
	}
	if len(l.Blobs) != nb {
		return nil, nil, fmt.Errorf("layer %q has %d blobs, want %d (weights%s)", l.Name, len(l.Blobs), nb, map[bool]string{true: " and bias", false: ""}[hasBias])
	}
	wb := &l.Blobs[0]
	if !sameShape(wb.Squeezed(), squeeze(want)) {
		return nil, nil, fmt.Errorf("layer %q: weights have shape %v, want %v", l.Name, wb.Shape, want)
	}
	out := want[0]
	if !hasBias {
		return wb, make([]float32, out), nil
	}
	bb := &l.Blobs[1]
	if !sameShape(bb.Squeezed(), []int{out}) {
		return nil, nil, fmt.Errorf("layer %q: bias has shape %v, want [%d]", l.Name, bb.Shape, out)
	}
	return wb, slices.Clone(bb.Data), nil
}

func squeeze(s []int) []int {
	for len(s) > 1 && s[0] == 1 {
		s = s[1:]
	}
	return s
}

func sameShape(a, b []int) bool { return slices.Equal(a, b) }

// cropSize returns a transform_param's crop_size, or 0.
func cropSize(tp *caffe.Msg) (int, error) {
	f, ok := tp.Get("crop_size")
	if !ok {
		return 0, nil
	}
	v, err := f.Int()
	if err == nil && v < 0 {
		err = fmt.Errorf("line %d: crop_size is negative (%d)", f.Line, v)
	}
	return v, err
}
