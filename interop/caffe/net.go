package caffe

import (
	"fmt"
	"io"
	"os"
)

// NetDef is a Caffe net definition: the part of a NetParameter that
// describes the layers, without weights.
type NetDef struct {
	Name string
	// Inputs are the net's declared inputs (deploy nets): from input +
	// input_dim / input_shape, or from layers of type "Input".
	Inputs []Input
	// Layers in file order, including data, loss and accuracy layers of
	// train/val definitions.
	Layers []LayerDef
}

// Input is one declared input blob and its shape, usually [N, C, H, W].
type Input struct {
	Name  string
	Shape []int
}

// LayerDef is one layer of a net definition. Type is in V2 spelling
// ("Convolution", "Pooling", "LRN", "InnerProduct", "ReLU", "Dropout",
// "Softmax", ...) whichever generation the file uses. The parameters of
// the layer types agegender understands are decoded, with Caffe's
// defaults filled in; the others are in Msg.
type LayerDef struct {
	Name, Type  string
	Bottom, Top []string
	// Phase is "TRAIN" or "TEST" when the layer has an include { phase }
	// rule, otherwise "".
	Phase string

	Conv         *ConvParam         // Convolution
	Pool         *PoolParam         // Pooling
	LRN          *LRNParam          // LRN
	InnerProduct *InnerProductParam // InnerProduct
	Dropout      *DropoutParam      // Dropout

	// Msg is the layer as written.
	Msg *Msg
}

// ConvParam is a convolution's geometry (Caffe's ConvolutionParameter).
// Square kernel_size/stride/pad fill both axes; kernel_h/kernel_w and the
// like override one.
type ConvParam struct {
	NumOutput        int
	KernelH, KernelW int
	StrideH, StrideW int // default 1
	PadH, PadW       int // default 0
	Group            int // default 1
	BiasTerm         bool
}

// PoolParam is a pooling layer's geometry (Caffe's PoolingParameter).
// Caffe pools in ceil mode: see ops.PoolOutSize.
type PoolParam struct {
	Pool             string // "MAX" (default), "AVE" or "STOCHASTIC"
	KernelH, KernelW int
	StrideH, StrideW int // default 1
	PadH, PadW       int
	Global           bool
}

// LRNParam is a local response normalisation (Caffe's LRNParameter):
// y = x / (K + Alpha/LocalSize · Σ x²)^Beta over LocalSize neighbours.
type LRNParam struct {
	LocalSize  int     // default 5
	Alpha      float64 // default 1
	Beta       float64 // default 0.75
	K          float64 // default 1
	NormRegion string  // "ACROSS_CHANNELS" (default) or "WITHIN_CHANNEL"
}

// InnerProductParam is a fully connected layer (InnerProductParameter).
type InnerProductParam struct {
	NumOutput int
	BiasTerm  bool
}

// DropoutParam is a dropout layer; Ratio is the fraction dropped.
type DropoutParam struct {
	Ratio float64 // default 0.5
}

// Layer returns the layer named name, or nil.
func (d *NetDef) Layer(name string) *LayerDef {
	for i := range d.Layers {
		if d.Layers[i].Name == name {
			return &d.Layers[i]
		}
	}
	return nil
}

// v1Types maps V1LayerParameter.LayerType, by enum name and number, to
// the V2 type string.
var v1Types = []struct {
	name string
	num  int
	v2   string
}{
	{"NONE", 0, ""}, {"ACCURACY", 1, "Accuracy"}, {"BNLL", 2, "BNLL"}, {"CONCAT", 3, "Concat"},
	{"CONVOLUTION", 4, "Convolution"}, {"DATA", 5, "Data"}, {"DROPOUT", 6, "Dropout"},
	{"EUCLIDEAN_LOSS", 7, "EuclideanLoss"}, {"FLATTEN", 8, "Flatten"}, {"HDF5_DATA", 9, "HDF5Data"},
	{"HDF5_OUTPUT", 10, "HDF5Output"}, {"IM2COL", 11, "Im2col"}, {"IMAGE_DATA", 12, "ImageData"},
	{"INFOGAIN_LOSS", 13, "InfogainLoss"}, {"INNER_PRODUCT", 14, "InnerProduct"}, {"LRN", 15, "LRN"},
	{"MULTINOMIAL_LOGISTIC_LOSS", 16, "MultinomialLogisticLoss"}, {"POOLING", 17, "Pooling"},
	{"RELU", 18, "ReLU"}, {"SIGMOID", 19, "Sigmoid"}, {"SOFTMAX", 20, "Softmax"},
	{"SOFTMAX_LOSS", 21, "SoftmaxWithLoss"}, {"SPLIT", 22, "Split"}, {"TANH", 23, "TanH"},
	{"WINDOW_DATA", 24, "WindowData"}, {"ELTWISE", 25, "Eltwise"}, {"POWER", 26, "Power"},
	{"SIGMOID_CROSS_ENTROPY_LOSS", 27, "SigmoidCrossEntropyLoss"}, {"HINGE_LOSS", 28, "HingeLoss"},
	{"MEMORY_DATA", 29, "MemoryData"}, {"ARGMAX", 30, "ArgMax"}, {"THRESHOLD", 31, "Threshold"},
	{"DUMMY_DATA", 32, "DummyData"}, {"SLICE", 33, "Slice"}, {"MVN", 34, "MVN"}, {"ABSVAL", 35, "AbsVal"},
	{"SILENCE", 36, "Silence"}, {"CONTRASTIVE_LOSS", 37, "ContrastiveLoss"}, {"EXP", 38, "Exp"},
	{"DECONVOLUTION", 39, "Deconvolution"},
}

// v1TypeName returns the V2 type of a V1 enum name, or "" if unknown.
func v1TypeName(enum string) string {
	for _, t := range v1Types {
		if t.name == enum {
			return t.v2
		}
	}
	return ""
}

// v1TypeNum returns the V2 type of a V1 enum number, or "" if unknown.
func v1TypeNum(n uint64) string {
	for _, t := range v1Types {
		if uint64(t.num) == n {
			return t.v2
		}
	}
	return ""
}

// v1Enum returns the V1 enum number of a V2 type, or false.
func v1Enum(v2 string) (int, bool) {
	for _, t := range v1Types {
		if t.v2 == v2 && v2 != "" {
			return t.num, true
		}
	}
	return 0, false
}

// ParseNetFile reads a net definition from a .prototxt file.
func ParseNetFile(path string) (*NetDef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("caffe: %w", err)
	}
	defer f.Close()
	d, err := parseNet(f)
	if err != nil {
		return nil, fmt.Errorf("caffe: %s: %w", path, err)
	}
	return d, nil
}

// ParseNet reads a net definition (NetParameter in text format), in the
// V1 (`layers { type: CONVOLUTION }`) or V2 (`layer { type: "Convolution" }`)
// layout.
func ParseNet(r io.Reader) (*NetDef, error) {
	d, err := parseNet(r)
	if err != nil {
		return nil, fmt.Errorf("caffe: %w", err)
	}
	return d, nil
}

func parseNet(r io.Reader) (*NetDef, error) {
	m, err := ParseText(r)
	if err != nil {
		return nil, err
	}
	d := &NetDef{}
	if f, ok := m.Get("name"); ok {
		d.Name = f.Value
	}
	if err := parseInputs(m, d); err != nil {
		return nil, err
	}
	v1, v2 := m.All("layers"), m.All("layer")
	if len(v1) > 0 && len(v2) > 0 {
		return nil, fmt.Errorf("net mixes V1 'layers' and V2 'layer' entries")
	}
	for _, f := range append(v1, v2...) {
		if f.Kind != Message {
			return nil, fmt.Errorf("line %d: %s must be a message", f.Line, f.Name)
		}
		l, err := parseLayer(f, len(v1) > 0)
		if err != nil {
			return nil, err
		}
		d.Layers = append(d.Layers, l)
		if l.Type == "Input" {
			in, err := inputLayer(l)
			if err != nil {
				return nil, err
			}
			d.Inputs = append(d.Inputs, in...)
		}
	}
	if len(d.Layers) == 0 {
		return nil, fmt.Errorf("no layers (not a Caffe net definition?)")
	}
	return d, nil
}

func parseInputs(m *Msg, d *NetDef) error {
	names := m.Strings("input")
	dims, err := ints(m, "input_dim")
	if err != nil {
		return err
	}
	shapes := m.All("input_shape")
	switch {
	case len(shapes) > 0:
		if len(shapes) != len(names) {
			return fmt.Errorf("%d inputs but %d input_shape entries", len(names), len(shapes))
		}
		for i, s := range shapes {
			dim, err := ints(s.Msg, "dim")
			if err != nil {
				return err
			}
			d.Inputs = append(d.Inputs, Input{Name: names[i], Shape: dim})
		}
	case len(dims) > 0:
		// input_dim gives four dimensions per input, in order.
		if len(dims) != 4*len(names) {
			return fmt.Errorf("%d inputs but %d input_dim values (want 4 per input)", len(names), len(dims))
		}
		for i, n := range names {
			d.Inputs = append(d.Inputs, Input{Name: n, Shape: dims[4*i : 4*i+4]})
		}
	default:
		for _, n := range names {
			d.Inputs = append(d.Inputs, Input{Name: n})
		}
	}
	return nil
}

func inputLayer(l LayerDef) ([]Input, error) {
	var out []Input
	shapes := l.Msg.Sub("input_param").All("shape")
	for i, top := range l.Top {
		in := Input{Name: top}
		if len(shapes) > 0 {
			s := shapes[min(i, len(shapes)-1)] // one shape may serve all tops
			dim, err := ints(s.Msg, "dim")
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", l.Name, err)
			}
			in.Shape = dim
		}
		out = append(out, in)
	}
	return out, nil
}

// ints returns the integer values of the repeated field name.
func ints(m *Msg, name string) ([]int, error) {
	var out []int
	for _, f := range m.All(name) {
		v, err := f.Int()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func parseLayer(f Field, v1 bool) (LayerDef, error) {
	m := f.Msg
	l := LayerDef{Msg: m, Bottom: m.Strings("bottom"), Top: m.Strings("top")}
	if n, ok := m.Get("name"); ok {
		l.Name = n.Value
	}
	t, ok := m.Get("type")
	if !ok {
		return l, fmt.Errorf("line %d: layer %q has no type", f.Line, l.Name)
	}
	l.Type = t.Value
	if v1 || t.Kind == Ident {
		// V1 spells types as enum identifiers (or, rarely, numbers).
		if t.Kind == Number {
			n, err := t.Int()
			if err != nil || n < 0 {
				return l, fmt.Errorf("line %d: layer %q: bad type %q", t.Line, l.Name, t.Value)
			}
			l.Type = v1TypeNum(uint64(n))
		} else {
			l.Type = v1TypeName(t.Value)
		}
		if l.Type == "" {
			return l, fmt.Errorf("line %d: layer %q: unknown V1 layer type %s", t.Line, l.Name, t.Value)
		}
	}
	if inc := m.Sub("include"); inc != nil {
		if p, ok := inc.Get("phase"); ok {
			l.Phase = p.Value
		}
	}
	var err error
	switch l.Type {
	case "Convolution":
		l.Conv, err = parseConv(m.Sub("convolution_param"))
	case "Pooling":
		l.Pool, err = parsePool(m.Sub("pooling_param"))
	case "LRN":
		l.LRN, err = parseLRN(m.Sub("lrn_param"))
	case "InnerProduct":
		l.InnerProduct, err = parseIP(m.Sub("inner_product_param"))
	case "Dropout":
		l.Dropout, err = parseDropout(m.Sub("dropout_param"))
	}
	if err != nil {
		return l, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	return l, nil
}

// intField returns the last value of field name, or def.
func intField(m *Msg, name string, def int) (int, error) {
	f, ok := m.Get(name)
	if !ok {
		return def, nil
	}
	v, err := f.Int()
	if err == nil && v < 0 {
		err = fmt.Errorf("line %d: %s is negative (%d)", f.Line, name, v)
	}
	return v, err
}

func floatField(m *Msg, name string, def float64) (float64, error) {
	f, ok := m.Get(name)
	if !ok {
		return def, nil
	}
	return f.Float()
}

func boolField(m *Msg, name string, def bool) (bool, error) {
	f, ok := m.Get(name)
	if !ok {
		return def, nil
	}
	return f.Bool()
}

// pair reads a square parameter (kernel_size, stride, pad; repeated in V2
// convolutions, one value per axis) and its _h/_w overrides.
func pair(m *Msg, base, h, w string, def int) (int, int, error) {
	vals, err := ints(m, base)
	if err != nil {
		return 0, 0, err
	}
	vh, vw := def, def
	switch len(vals) {
	case 0:
	case 1:
		vh, vw = vals[0], vals[0]
	case 2:
		vh, vw = vals[0], vals[1]
	default:
		return 0, 0, fmt.Errorf("%d values of %s; only 2-D layers are supported", len(vals), base)
	}
	if vh, err = intField(m, h, vh); err != nil {
		return 0, 0, err
	}
	if vw, err = intField(m, w, vw); err != nil {
		return 0, 0, err
	}
	if vh < 0 || vw < 0 {
		return 0, 0, fmt.Errorf("negative %s", base)
	}
	return vh, vw, nil
}

func parseConv(m *Msg) (*ConvParam, error) {
	if m == nil {
		return nil, fmt.Errorf("convolution without convolution_param")
	}
	p := &ConvParam{}
	var err error
	if p.NumOutput, err = intField(m, "num_output", 0); err != nil {
		return nil, err
	}
	if p.KernelH, p.KernelW, err = pair(m, "kernel_size", "kernel_h", "kernel_w", 0); err != nil {
		return nil, err
	}
	if p.StrideH, p.StrideW, err = pair(m, "stride", "stride_h", "stride_w", 1); err != nil {
		return nil, err
	}
	if p.PadH, p.PadW, err = pair(m, "pad", "pad_h", "pad_w", 0); err != nil {
		return nil, err
	}
	if p.Group, err = intField(m, "group", 1); err != nil {
		return nil, err
	}
	if p.BiasTerm, err = boolField(m, "bias_term", true); err != nil {
		return nil, err
	}
	if p.NumOutput == 0 || p.KernelH == 0 || p.KernelW == 0 || p.StrideH == 0 || p.StrideW == 0 || p.Group == 0 {
		return nil, fmt.Errorf("convolution needs positive num_output, kernel_size, stride and group (got %d, %d×%d, %d×%d, %d)",
			p.NumOutput, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.Group)
	}
	return p, nil
}

func parsePool(m *Msg) (*PoolParam, error) {
	if m == nil {
		return nil, fmt.Errorf("pooling without pooling_param")
	}
	p := &PoolParam{Pool: "MAX"}
	if f, ok := m.Get("pool"); ok {
		switch f.Value {
		case "MAX", "0":
			p.Pool = "MAX"
		case "AVE", "1":
			p.Pool = "AVE"
		case "STOCHASTIC", "2":
			p.Pool = "STOCHASTIC"
		default:
			return nil, fmt.Errorf("line %d: unknown pool method %s", f.Line, f.Value)
		}
	}
	var err error
	if p.Global, err = boolField(m, "global_pooling", false); err != nil {
		return nil, err
	}
	if p.KernelH, p.KernelW, err = pair(m, "kernel_size", "kernel_h", "kernel_w", 0); err != nil {
		return nil, err
	}
	if p.StrideH, p.StrideW, err = pair(m, "stride", "stride_h", "stride_w", 1); err != nil {
		return nil, err
	}
	if p.PadH, p.PadW, err = pair(m, "pad", "pad_h", "pad_w", 0); err != nil {
		return nil, err
	}
	if !p.Global && (p.KernelH == 0 || p.KernelW == 0 || p.StrideH == 0 || p.StrideW == 0) {
		return nil, fmt.Errorf("pooling needs positive kernel_size and stride")
	}
	return p, nil
}

func parseLRN(m *Msg) (*LRNParam, error) {
	p := &LRNParam{NormRegion: "ACROSS_CHANNELS"}
	var err error
	if p.LocalSize, err = intField(m, "local_size", 5); err != nil {
		return nil, err
	}
	if p.Alpha, err = floatField(m, "alpha", 1); err != nil {
		return nil, err
	}
	if p.Beta, err = floatField(m, "beta", 0.75); err != nil {
		return nil, err
	}
	if p.K, err = floatField(m, "k", 1); err != nil {
		return nil, err
	}
	if f, ok := m.Get("norm_region"); ok {
		p.NormRegion = f.Value
		if f.Value == "0" {
			p.NormRegion = "ACROSS_CHANNELS"
		} else if f.Value == "1" {
			p.NormRegion = "WITHIN_CHANNEL"
		}
	}
	if p.LocalSize%2 == 0 {
		return nil, fmt.Errorf("LRN local_size %d must be odd", p.LocalSize)
	}
	return p, nil
}

func parseIP(m *Msg) (*InnerProductParam, error) {
	if m == nil {
		return nil, fmt.Errorf("inner product without inner_product_param")
	}
	p := &InnerProductParam{}
	var err error
	if p.NumOutput, err = intField(m, "num_output", 0); err != nil {
		return nil, err
	}
	if p.BiasTerm, err = boolField(m, "bias_term", true); err != nil {
		return nil, err
	}
	if p.NumOutput == 0 {
		return nil, fmt.Errorf("inner product needs a positive num_output")
	}
	return p, nil
}

func parseDropout(m *Msg) (*DropoutParam, error) {
	r, err := floatField(m, "dropout_ratio", 0.5)
	if err != nil {
		return nil, err
	}
	if r < 0 || r >= 1 {
		return nil, fmt.Errorf("dropout_ratio %g outside [0, 1)", r)
	}
	return &DropoutParam{Ratio: r}, nil
}
