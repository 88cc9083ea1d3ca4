package caffe

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
)

// realFile returns a file of the paper's release (../shared, read-only),
// or skips the test when the shared data is absent.
func realFile(t testing.TB, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{datatest.SharedDir(t, "adience/caffe")}, parts...)...)
}

func TestParseTextSyntax(t *testing.T) {
	src := `# a comment
name: "a\"b" 'c\x41\101'   # escapes; adjacent strings concatenate
n: -12 f: 1.5e-3, g: inf; h: -inf
e: MAX b: false
sub { x: 1 } sub: < x: 2 >
list: [1, 2, 3]
msgs: [{ y: 1 }, { y: 2 }]
`
	m, err := ParseText(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := m.Get("name"); f.Kind != String || f.Value != `a"bcAA` {
		t.Errorf("name = %v %q", f.Kind, f.Value)
	}
	if f, _ := m.Get("n"); f.Kind != Number || f.Value != "-12" {
		t.Errorf("n = %+v", f)
	}
	if f, _ := m.Get("f"); f.Value != "1.5e-3" {
		t.Errorf("f = %+v", f)
	}
	for _, name := range []string{"g", "h"} {
		f, _ := m.Get(name)
		if v, err := f.Float(); err != nil || v == 0 || v*2 != v {
			t.Errorf("%s = %v, %v; want ±inf", name, v, err)
		}
	}
	if f, _ := m.Get("e"); f.Kind != Ident || f.Value != "MAX" {
		t.Errorf("e = %+v", f)
	}
	if f, _ := m.Get("b"); f.Kind != Ident {
		t.Errorf("b = %+v", f)
	} else if v, err := f.Bool(); err != nil || v {
		t.Errorf("b = %v, %v", v, err)
	}
	subs := m.All("sub")
	if len(subs) != 2 || subs[0].Msg.Strings("x")[0] != "1" || subs[1].Msg.Strings("x")[0] != "2" {
		t.Errorf("sub = %+v", subs)
	}
	if got := m.Strings("list"); !reflect.DeepEqual(got, []string{"1", "2", "3"}) {
		t.Errorf("list = %v", got)
	}
	if ms := m.All("msgs"); len(ms) != 2 || ms[1].Msg.Strings("y")[0] != "2" {
		t.Errorf("msgs = %+v", ms)
	}
	if f, _ := m.Get("list"); f.Line != 6 {
		t.Errorf("list on line %d, want 6", f.Line)
	}
}

func TestParseTextErrors(t *testing.T) {
	for _, src := range []string{
		`a {`, `a }`, `a: "open`, `a: `, `a 1`, `a: {`, `: 1`, `a: [1, 2`, `a: "\q"`, `a: - `, `a: @`,
		strings.Repeat("a {", 100) + strings.Repeat("}", 100),
	} {
		if _, err := ParseText(strings.NewReader(src)); err == nil {
			t.Errorf("%.40q parsed without error", src)
		} else if !strings.Contains(err.Error(), "line ") {
			t.Errorf("%.40q: error %q does not give a line", src, err)
		}
	}
}

// layerSummary is what the paper's nets must contain, in order.
type layerSummary struct {
	name, typ string
	arg       []float64
}

func summarise(d *NetDef) []layerSummary {
	var out []layerSummary
	for _, l := range d.Layers {
		s := layerSummary{name: l.Name, typ: l.Type}
		switch {
		case l.Conv != nil:
			s.arg = []float64{float64(l.Conv.NumOutput), float64(l.Conv.KernelH), float64(l.Conv.StrideH), float64(l.Conv.PadH)}
		case l.Pool != nil:
			if l.Pool.Pool != "MAX" {
				s.typ += " " + l.Pool.Pool
			}
			s.arg = []float64{float64(l.Pool.KernelH), float64(l.Pool.StrideH)}
		case l.LRN != nil:
			s.arg = []float64{float64(l.LRN.LocalSize), l.LRN.Alpha, l.LRN.Beta}
		case l.InnerProduct != nil:
			s.arg = []float64{float64(l.InnerProduct.NumOutput)}
		case l.Dropout != nil:
			s.arg = []float64{l.Dropout.Ratio}
		}
		out = append(out, s)
	}
	return out
}

// paperLayers is the paper's layer stack; classes sets fc8.
func paperLayers(classes int) []layerSummary {
	return []layerSummary{
		{"conv1", "Convolution", []float64{96, 7, 4, 0}}, {"relu1", "ReLU", nil},
		{"pool1", "Pooling", []float64{3, 2}}, {"norm1", "LRN", []float64{5, 1e-4, 0.75}},
		{"conv2", "Convolution", []float64{256, 5, 1, 2}}, {"relu2", "ReLU", nil},
		{"pool2", "Pooling", []float64{3, 2}}, {"norm2", "LRN", []float64{5, 1e-4, 0.75}},
		{"conv3", "Convolution", []float64{384, 3, 1, 1}}, {"relu3", "ReLU", nil},
		{"pool5", "Pooling", []float64{3, 2}},
		{"fc6", "InnerProduct", []float64{512}}, {"relu6", "ReLU", nil}, {"drop6", "Dropout", []float64{0.5}},
		{"fc7", "InnerProduct", []float64{512}}, {"relu7", "ReLU", nil}, {"drop7", "Dropout", []float64{0.5}},
		{"fc8", "InnerProduct", []float64{float64(classes)}},
	}
}

func TestParseRealDeploy(t *testing.T) {
	for _, c := range []struct {
		task    string
		classes int
		batch   int
	}{{"age", 8, 1}, {"gender", 2, 10}} {
		d, err := ParseNetFile(realFile(t, c.task, "deploy.prototxt"))
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "CaffeNet" {
			t.Errorf("%s: name %q", c.task, d.Name)
		}
		if want := []Input{{"data", []int{c.batch, 3, 227, 227}}}; !reflect.DeepEqual(d.Inputs, want) {
			t.Errorf("%s: inputs %v, want %v", c.task, d.Inputs, want)
		}
		want := append(paperLayers(c.classes), layerSummary{"prob", "Softmax", nil})
		if got := summarise(d); !reflect.DeepEqual(got, want) {
			t.Errorf("%s deploy layers:\n got %v\nwant %v", c.task, got, want)
		}
		if l := d.Layer("pool1"); l.Bottom[0] != "conv1" || l.Top[0] != "pool1" {
			t.Errorf("%s: pool1 connects %v → %v", c.task, l.Bottom, l.Top)
		}
		if l := d.Layer("conv1"); l.Conv.Group != 1 || !l.Conv.BiasTerm || l.Conv.KernelW != 7 || l.Conv.StrideW != 4 {
			t.Errorf("%s: conv1 defaults %+v", c.task, l.Conv)
		}
	}
}

func TestParseRealTrainVal(t *testing.T) {
	for _, c := range []struct {
		task    string
		classes int
	}{{"age", 8}, {"gender", 2}} {
		d, err := ParseNetFile(realFile(t, c.task, "train_val_test_fold_is_0.prototxt"))
		if err != nil {
			t.Fatal(err)
		}
		want := []layerSummary{{"data", "Data", nil}, {"data", "Data", nil}}
		want = append(want, paperLayers(c.classes)...)
		want = append(want, layerSummary{"accuracy", "Accuracy", nil}, layerSummary{"loss", "SoftmaxWithLoss", nil})
		if got := summarise(d); !reflect.DeepEqual(got, want) {
			t.Errorf("%s train_val layers:\n got %v\nwant %v", c.task, got, want)
		}
		if d.Layers[0].Phase != "TRAIN" || d.Layers[1].Phase != "TEST" || d.Layer("accuracy").Phase != "TEST" {
			t.Errorf("%s: phases %q %q", c.task, d.Layers[0].Phase, d.Layers[1].Phase)
		}
		tp := d.Layers[0].Msg.Sub("transform_param")
		if crop, _ := intField(tp, "crop_size", 0); crop != 227 {
			t.Errorf("%s: crop_size %d", c.task, crop)
		}
		if f, _ := tp.Get("mirror"); f.Value != "true" {
			t.Errorf("%s: mirror %q", c.task, f.Value)
		}
		// Learning-rate multipliers are kept in the tree.
		if lr := d.Layer("conv1").Msg.Strings("blobs_lr"); !reflect.DeepEqual(lr, []string{"1", "2"}) {
			t.Errorf("%s: conv1 blobs_lr %v", c.task, lr)
		}
	}
}

func TestParseRealSolver(t *testing.T) {
	m, err := ParseText(strings.NewReader(mustRead(t, realFile(t, "age", "solver_test_fold_is_2.prototxt"))))
	if err != nil {
		t.Fatal(err)
	}
	lr, _ := m.Get("base_lr")
	if v, _ := lr.Float(); v != 0.001 {
		t.Errorf("base_lr %v", v)
	}
	if mode, _ := m.Get("solver_mode"); mode.Value != "GPU" || mode.Kind != Ident {
		t.Errorf("solver_mode %+v", mode)
	}
}

func TestParseNetV2(t *testing.T) {
	src := `name: "v2"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 8 kernel_size: 3 kernel_size: 5 stride_h: 2 pad: 1 group: 2 bias_term: false } }
layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "n" type: "LRN" bottom: "p" top: "n" lrn_param { local_size: 3 } }
layer { name: "f" type: "InnerProduct" bottom: "n" top: "f" inner_product_param { num_output: 4 } }
layer { name: "d" type: "Dropout" bottom: "f" top: "f" }
`
	d, err := ParseNet(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Input{{"data", []int{1, 3, 224, 224}}}; !reflect.DeepEqual(d.Inputs, want) {
		t.Errorf("inputs %v", d.Inputs)
	}
	want := ConvParam{NumOutput: 8, KernelH: 3, KernelW: 5, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1, Group: 2}
	if got := *d.Layer("c").Conv; got != want {
		t.Errorf("conv %+v, want %+v", got, want)
	}
	if p := d.Layer("p").Pool; p.Pool != "AVE" || p.KernelH != 2 || p.StrideW != 2 {
		t.Errorf("pool %+v", p)
	}
	if l := d.Layer("n").LRN; *l != (LRNParam{LocalSize: 3, Alpha: 1, Beta: 0.75, K: 1, NormRegion: "ACROSS_CHANNELS"}) {
		t.Errorf("LRN defaults %+v", l)
	}
	if r := d.Layer("d").Dropout.Ratio; r != 0.5 {
		t.Errorf("dropout default %v", r)
	}
}

func TestParseNetErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`name: "x"`, "no layers"},
		{`layers { name: "a" type: BOGUS }`, "unknown V1 layer type"},
		{`layer { name: "a" }`, "no type"},
		{`layer { name: "c" type: "Convolution" convolution_param { kernel_size: 3 } }`, "num_output"},
		{`layer { name: "c" type: "Convolution" convolution_param { num_output: "x" kernel_size: 3 } }`, "integer"},
		{`layer { name: "d" type: "Dropout" dropout_param { dropout_ratio: 2 } }`, "dropout_ratio"},
		{`input: "data" input_dim: 1 layer { name: "d" type: "ReLU" }`, "input_dim"},
		{`layers { name: "a" type: RELU } layer { name: "b" type: "ReLU" }`, "mixes"},
	} {
		_, err := ParseNet(strings.NewReader(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one mentioning %q", c.src, err, c.want)
		}
	}
}

// FuzzParseNet feeds arbitrary text to the parser: errors, never panics.
func FuzzParseNet(f *testing.F) {
	f.Add(`layers { name: "c" type: CONVOLUTION convolution_param { num_output: 2 kernel_size: 3 } }`)
	f.Add(`layer { name: "d" type: "Input" input_param { shape: [{ dim: [1, 3] }] } } s: "\x41\101"`)
	f.Fuzz(func(t *testing.T, src string) {
		ParseNet(strings.NewReader(src))
	})
}
