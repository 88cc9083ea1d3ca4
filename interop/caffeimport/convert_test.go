package caffeimport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
)

// randomWeights builds Caffe weights for def's convolutions and inner
// products, in Caffe's layout, with He-scaled Gaussian values (the last
// layer scaled by headScale) and random biases. Parameterless layers are
// listed too, as in real caffemodels.
func randomWeights(t testing.TB, def *caffe.NetDef, seed uint64, headScale float64) []caffe.Layer {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	side, c, flat := def.Inputs[0].Shape[2], 3, 0
	var out []caffe.Layer
	last := ""
	for _, l := range def.Layers {
		if l.InnerProduct != nil {
			last = l.Name
		}
	}
	gauss := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	for _, l := range def.Layers {
		layer := caffe.Layer{Name: l.Name, Type: l.Type}
		switch {
		case l.Conv != nil:
			p := l.Conv
			fan := c * p.KernelH * p.KernelW
			layer.Blobs = []caffe.Blob{
				{Shape: []int{p.NumOutput, c, p.KernelH, p.KernelW}, Data: gauss(p.NumOutput*fan, math.Sqrt(2/float64(fan)))},
				{Shape: []int{p.NumOutput}, Data: gauss(p.NumOutput, 0.1)},
			}
			side, c = ops.ConvOutSize(side, p.KernelH, p.StrideH, p.PadH), p.NumOutput
		case l.Pool != nil:
			side = ops.PoolOutSize(side, l.Pool.KernelH, l.Pool.StrideH)
		case l.InnerProduct != nil:
			in := flat
			if in == 0 {
				in = c * side * side
			}
			std := math.Sqrt(2 / float64(in))
			if l.Name == last {
				std *= headScale
			}
			n := l.InnerProduct.NumOutput
			layer.Blobs = []caffe.Blob{{Shape: []int{n, in}, Data: gauss(n*in, std)}, {Shape: []int{n}, Data: gauss(n, 0.1)}}
			flat = n
		}
		out = append(out, layer)
	}
	return out
}

// roundTrip writes layers as a caffemodel and reads them back.
func roundTrip(t testing.TB, layers []caffe.Layer, opts *caffe.WriteOptions) *caffe.Weights {
	t.Helper()
	var buf bytes.Buffer
	if err := caffe.WriteNetParameter(&buf, layers, opts); err != nil {
		t.Fatal(err)
	}
	w, err := caffe.ReadNetParameter(&buf, int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func weightsByName(m *model.Model) map[string]struct {
	dims []int
	data []float32
} {
	out := map[string]struct {
		dims []int
		data []float32
	}{}
	for _, t := range m.Weights {
		out[t.Name] = struct {
			dims []int
			data []float32
		}{t.Dims, t.F32}
	}
	return out
}

// TestImportPaperNet builds random age and gender caffemodels from the
// real deploy definitions, in both file generations, imports them and
// checks every value of every tensor against its Caffe source.
func TestImportPaperNet(t *testing.T) {
	mean := [3]float32{114.9, 87.8, 78.4}
	for _, c := range []struct {
		task    string
		classes int
		v1      bool
	}{{"age", 8, true}, {"gender", 2, false}} {
		def, err := caffe.ParseNetFile(realFile(t, c.task, "deploy.prototxt"))
		if err != nil {
			t.Fatal(err)
		}
		src := randomWeights(t, def, 1, 1)
		w := roundTrip(t, src, &caffe.WriteOptions{Name: "CaffeNet", V1: c.v1})
		m, err := ToModel(def, w, c.task, mean)
		if err != nil {
			t.Fatal(err)
		}
		info := m.Info
		wantCfg := model.Config{Net: "origin", Classes: c.classes, Input: 227}
		if info.Config != wantCfg || info.Task.String() != c.task || info.Resize != 256 || info.Mean != mean {
			t.Errorf("%s: info %+v", c.task, info)
		}
		wantNames := GenderClasses
		if c.task == "age" {
			wantNames = AgeClasses
		}
		if !reflect.DeepEqual(info.ClassNames, wantNames) {
			t.Errorf("%s: class names %v", c.task, info.ClassNames)
		}
		got := weightsByName(m)
		if len(got) != 12 {
			t.Errorf("%s: %d tensors, want 12", c.task, len(got))
		}
		blob := func(layer string, i int) []float32 {
			for _, l := range src {
				if l.Name == layer {
					return l.Blobs[i].Data
				}
			}
			t.Fatalf("no layer %s", layer)
			return nil
		}
		// Convolutions: [Cout, Cin, K, K] → [K, K, Cin, Cout], conv1's Cin reversed.
		for _, cv := range []struct {
			name           string
			cout, cin, k   int
			flipBGRToRGB   bool
			wantDimsString string
		}{{"conv1", 96, 3, 7, true, "[7 7 3 96]"}, {"conv2", 256, 96, 5, false, "[5 5 96 256]"}, {"conv3", 384, 256, 3, false, "[3 3 256 384]"}} {
			g := got["/net/"+cv.name+"/weights"]
			if fmt.Sprint(g.dims) != cv.wantDimsString {
				t.Fatalf("%s: %s dims %v", c.task, cv.name, g.dims)
			}
			s := blob(cv.name, 0)
			for o := 0; o < cv.cout; o++ {
				for ci := 0; ci < cv.cin; ci++ {
					cRGB := ci
					if cv.flipBGRToRGB {
						cRGB = 2 - ci // Caffe channel 0 is blue, ours 2
					}
					for y := 0; y < cv.k; y++ {
						for x := 0; x < cv.k; x++ {
							want := s[o*cv.cin*cv.k*cv.k+ci*cv.k*cv.k+y*cv.k+x]
							if v := g.data[y*cv.k*cv.cin*cv.cout+x*cv.cin*cv.cout+cRGB*cv.cout+o]; v != want {
								t.Fatalf("%s: %s[o=%d c=%d y=%d x=%d] = %v, want %v", c.task, cv.name, o, ci, y, x, v, want)
							}
						}
					}
				}
			}
		}
		// fc6: Caffe input index c·49 + h·7 + w → ours (h·7 + w)·384 + c.
		g, s := got["/net/fc6/weights"], blob("fc6", 0)
		if fmt.Sprint(g.dims) != "[18816 512]" {
			t.Fatalf("fc6 dims %v", g.dims)
		}
		for o := 0; o < 512; o++ {
			for ch := 0; ch < 384; ch++ {
				for h := 0; h < 7; h++ {
					for x := 0; x < 7; x++ {
						if v, want := g.data[((h*7+x)*384+ch)*512+o], s[o*18816+ch*49+h*7+x]; v != want {
							t.Fatalf("fc6[o=%d c=%d h=%d w=%d] = %v, want %v", o, ch, h, x, v, want)
						}
					}
				}
			}
		}
		// fc7, fc8: transposed.
		for _, fc := range []struct {
			name    string
			in, out int
		}{{"fc7", 512, 512}, {"fc8", 512, c.classes}} {
			g, s := got["/net/"+fc.name+"/weights"], blob(fc.name, 0)
			if !reflect.DeepEqual(g.dims, []int{fc.in, fc.out}) {
				t.Fatalf("%s dims %v", fc.name, g.dims)
			}
			for o := 0; o < fc.out; o++ {
				for i := 0; i < fc.in; i++ {
					if g.data[i*fc.out+o] != s[o*fc.in+i] {
						t.Fatalf("%s[%d,%d] differs", fc.name, o, i)
					}
				}
			}
		}
		// Biases: copied as they are.
		for _, name := range []string{"conv1", "conv2", "conv3", "fc6", "fc7", "fc8"} {
			if g := got["/net/"+name+"/biases"]; !reflect.DeepEqual(g.data, blob(name, 1)) {
				t.Errorf("%s: %s biases differ", c.task, name)
			}
		}
	}
}

// TestMatchesCaffe checks the conversion end to end: a Caffe-semantics
// forward pass (NCHW, BGR, float64, written from Caffe's definitions
// below) on a random 227×227 image against agegender's predictor on the
// same image in RGB NHWC. The probabilities agree to 1e-4.
func TestMatchesCaffe(t *testing.T) {
	def, err := caffe.ParseNetFile(realFile(t, "age", "deploy.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	// fc8 is scaled down so the softmax is not saturated and the test
	// compares meaningful probabilities.
	w := roundTrip(t, randomWeights(t, def, 2, 0.02), &caffe.WriteOptions{V1: true})
	meanBGR := [3]float64{78.426338, 87.768914, 114.895848}
	m, err := ToModel(def, w, "age", [3]float32{float32(meanBGR[2]), float32(meanBGR[1]), float32(meanBGR[0])})
	if err != nil {
		t.Fatal(err)
	}
	compareWithCaffe(t, def, w, m, 3, meanBGR)
}

// TestVGGFaceMatchesCaffe imports a VGG-Face-shaped net (the released
// definition, with the input reduced to 32×32 and fc8 to 2 outputs to
// keep the test light) and checks it end to end like TestMatchesCaffe.
func TestVGGFaceMatchesCaffe(t *testing.T) {
	if testing.Short() {
		t.Skip("VGG-16 weights (30 M values) are heavy for -short")
	}
	src := mustRead(t, "../caffe/testdata/vgg_face_deploy.prototxt")
	src = strings.ReplaceAll(src, "input_dim: 224", "input_dim: 32")
	src = strings.Replace(src, "num_output: 2622", "num_output: 2", 1)
	def, err := caffe.ParseNet(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	w := roundTrip(t, randomWeights(t, def, 3, 0.005), &caffe.WriteOptions{Name: "VGG_FACE_16_layers"})
	m, err := Convert(def, w, Options{Task: "gender", Mean: caffe.VGGFaceMeanRGB, Frozen: VGGFaceConvLayers()})
	if err != nil {
		t.Fatal(err)
	}
	if want := (model.Config{Net: "vgg16", Classes: 2, Input: 32}); m.Info.Config != want {
		t.Errorf("config %+v, want %+v", m.Info.Config, want)
	}
	if len(m.Weights) != 32 {
		t.Errorf("%d tensors, want 32 (16 layers)", len(m.Weights))
	}
	var prov struct{ Frozen []string }
	if err := json.Unmarshal(m.Info.Training, &prov); err != nil || len(prov.Frozen) != 26 || prov.Frozen[0] != "/net/conv1_1/weights" || prov.Frozen[25] != "/net/conv5_3/biases" {
		t.Errorf("frozen variables %v (%v)", prov.Frozen, err)
	}
	mean := caffe.VGGFaceMeanRGB
	compareWithCaffe(t, def, w, m, 1, [3]float64{float64(mean[2]), float64(mean[1]), float64(mean[0])})
}

func TestVGGFaceDefinition(t *testing.T) {
	def, err := caffe.ParseNetFile("../caffe/testdata/vgg_face_deploy.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	// Without weights for it, the full-size net is checked by its
	// definition only: every layer must match agegender's vgg16.
	_, err = Convert(def, &caffe.Weights{}, Options{Task: "identity"})
	if err == nil || !strings.Contains(err.Error(), `no layer "conv1_1"`) {
		t.Errorf("got %v; want the definition accepted and the missing weights reported", err)
	}
}

// compareWithCaffe runs n random images through the reference and through
// agegender's predictor.
func compareWithCaffe(t *testing.T, def *caffe.NetDef, w *caffe.Weights, m *model.Model, n int, meanBGR [3]float64) {
	t.Helper()
	backend, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.NewPredictor(backend, m, ops.Portable)
	if err != nil {
		t.Fatal(err)
	}
	side := m.Info.Config.Input
	rng := rand.New(rand.NewPCG(7, 7))
	for img := 0; img < n; img++ {
		// A random BGR image, 0..255, as Caffe would read it.
		bgr := make([]float64, 3*side*side) // CHW
		for i := range bgr {
			bgr[i] = math.Floor(rng.Float64() * 256)
		}
		caffeIn := make([]float64, len(bgr))
		ours := make([]float32, len(bgr)) // HWC, RGB, minus the RGB mean
		for c := 0; c < 3; c++ {
			for y := 0; y < side; y++ {
				for x := 0; x < side; x++ {
					v := bgr[(c*side+y)*side+x]
					caffeIn[(c*side+y)*side+x] = v - meanBGR[c]
					ours[(y*side+x)*3+(2-c)] = float32(v) - m.Info.Mean[2-c]
				}
			}
		}
		want := caffeForward(t, def, w, caffeIn, side)
		got, err := p.Probs(ours, 1)
		if err != nil {
			t.Fatal(err)
		}
		maxP := 0.0
		for k := range want {
			maxP = math.Max(maxP, want[k])
			if d := math.Abs(float64(got[0][k]) - want[k]); d > 1e-4 {
				t.Errorf("image %d class %d: agegender %.6f, Caffe reference %.6f", img, k, got[0][k], want[k])
			}
		}
		if maxP > 0.999 {
			t.Errorf("image %d: reference softmax saturated (%v); the comparison is weak", img, want)
		}
		t.Logf("image %d: probabilities %.4f", img, want)
	}
}

// caffeForward evaluates def on one CHW image the way Caffe does, in
// float64: convolution with zero padding, max-pooling in ceil mode
// (pooled = ceil((H + 2·pad − k) / stride) + 1, minus one if the last
// window starts in the padding), cross-channel LRN
// (x / (k + α/n · Σ x²)^β), inner products on the CHW-flattened blob,
// ReLU, softmax; dropout is the identity at test time.
func caffeForward(t *testing.T, def *caffe.NetDef, w *caffe.Weights, x []float64, side int) []float64 {
	c, h, wd := 3, side, side
	for _, l := range def.Layers {
		switch l.Type {
		case "Convolution":
			p := l.Conv
			blobs := w.Layer(l.Name).Blobs
			k, s, pad, co := p.KernelH, p.StrideH, p.PadH, p.NumOutput
			oh, ow := (h+2*pad-k)/s+1, (wd+2*pad-k)/s+1
			y := make([]float64, co*oh*ow)
			kw, bias := blobs[0].Data, blobs[1].Data
			for o := 0; o < co; o++ {
				for ci := 0; ci < c; ci++ {
					for ky := 0; ky < k; ky++ {
						for kx := 0; kx < k; kx++ {
							wv := float64(kw[((o*c+ci)*k+ky)*k+kx])
							for oy := 0; oy < oh; oy++ {
								iy := oy*s - pad + ky
								if iy < 0 || iy >= h {
									continue
								}
								row := x[(ci*h+iy)*wd:]
								out := y[(o*oh+oy)*ow:]
								for ox := 0; ox < ow; ox++ {
									if ix := ox*s - pad + kx; ix >= 0 && ix < wd {
										out[ox] += wv * row[ix]
									}
								}
							}
						}
					}
				}
				for i := 0; i < oh*ow; i++ {
					y[o*oh*ow+i] += float64(bias[o])
				}
			}
			x, c, h, wd = y, co, oh, ow
		case "ReLU":
			for i, v := range x {
				x[i] = math.Max(v, 0)
			}
		case "Pooling":
			p := l.Pool
			k, s := p.KernelH, p.StrideH
			oh := int(math.Ceil(float64(h+2*p.PadH-k)/float64(s))) + 1
			ow := int(math.Ceil(float64(wd+2*p.PadW-k)/float64(s))) + 1
			if p.PadH > 0 && (oh-1)*s >= h+p.PadH {
				oh--
			}
			if p.PadW > 0 && (ow-1)*s >= wd+p.PadW {
				ow--
			}
			y := make([]float64, c*oh*ow)
			for ch := 0; ch < c; ch++ {
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						y0, x0 := oy*s-p.PadH, ox*s-p.PadW
						y1, x1 := min(y0+k, h), min(x0+k, wd)
						y0, x0 = max(y0, 0), max(x0, 0)
						best := math.Inf(-1)
						for yy := y0; yy < y1; yy++ {
							for xx := x0; xx < x1; xx++ {
								best = math.Max(best, x[(ch*h+yy)*wd+xx])
							}
						}
						y[(ch*oh+oy)*ow+ox] = best
					}
				}
			}
			x, h, wd = y, oh, ow
		case "LRN":
			p := l.LRN
			y := make([]float64, len(x))
			for ch := 0; ch < c; ch++ {
				for i := 0; i < h*wd; i++ {
					sum := 0.0
					for cc := max(0, ch-p.LocalSize/2); cc <= min(c-1, ch+p.LocalSize/2); cc++ {
						v := x[cc*h*wd+i]
						sum += v * v
					}
					y[ch*h*wd+i] = x[ch*h*wd+i] * math.Pow(p.K+p.Alpha/float64(p.LocalSize)*sum, -p.Beta)
				}
			}
			x = y
		case "InnerProduct":
			blobs := w.Layer(l.Name).Blobs
			in, out := len(x), l.InnerProduct.NumOutput
			y := make([]float64, out)
			for o := 0; o < out; o++ {
				sum := float64(blobs[1].Data[o])
				row := blobs[0].Data[o*in : (o+1)*in]
				for i, v := range x {
					sum += float64(row[i]) * v
				}
				y[o] = sum
			}
			x, c, h, wd = y, out, 1, 1
		case "Softmax":
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, v)
			}
			sum := 0.0
			for i, v := range x {
				x[i] = math.Exp(v - mx)
				sum += x[i]
			}
			for i := range x {
				x[i] /= sum
			}
		case "Dropout":
		default:
			t.Fatalf("reference: layer type %s not implemented", l.Type)
		}
	}
	return x
}

// TestConvertErrors checks that nets agegender cannot run are refused
// with errors naming the layer and what was expected.
func TestConvertErrors(t *testing.T) {
	deploy := mustRead(t, realFile(t, "gender", "deploy.prototxt"))
	good, err := caffe.ParseNet(strings.NewReader(deploy))
	if err != nil {
		t.Fatal(err)
	}
	layers := randomWeights(t, good, 4, 1)
	w := roundTrip(t, layers, nil)
	mean := [3]float32{}

	for _, c := range []struct {
		what, old, new, want string
	}{
		{"conv2 width", "num_output: 256", "num_output: 128", `layer "conv2"`},
		{"AVE pool", "pool: MAX", "pool: AVE", `layer "pool1" (Pooling): got AVE`},
		{"LRN size", "local_size: 5", "local_size: 3", `layer "norm1" (LRN)`},
		{"LRN replaced", "type: LRN\n  bottom: \"pool2\"", "type: RELU\n  bottom: \"pool2\"", `layer "norm2" (ReLU): wrong type`},
		{"input", "input_dim: 227", "input_dim: 99", "input"},
	} {
		def, err := caffe.ParseNet(strings.NewReader(strings.Replace(deploy, c.old, c.new, 1)))
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if _, err := ToModel(def, w, "gender", mean); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}

	// caffe.Weights that do not fit the definition.
	bad := func(edit func([]caffe.Layer) []caffe.Layer) *caffe.Weights {
		ls := make([]caffe.Layer, len(layers))
		for i, l := range layers {
			ls[i] = caffe.Layer{Name: l.Name, Type: l.Type, Blobs: append([]caffe.Blob(nil), l.Blobs...)}
		}
		return roundTrip(t, edit(ls), nil)
	}
	for _, c := range []struct {
		what string
		w    *caffe.Weights
		want string
	}{
		{"no fc7", bad(func(ls []caffe.Layer) []caffe.Layer {
			for i := range ls {
				if ls[i].Name == "fc7" {
					return append(ls[:i], ls[i+1:]...)
				}
			}
			return ls
		}), `no layer "fc7"`},
		{"conv3 transposed", bad(func(ls []caffe.Layer) []caffe.Layer {
			for i := range ls {
				if ls[i].Name == "conv3" {
					ls[i].Blobs[0].Shape = []int{256, 384, 3, 3}
				}
			}
			return ls
		}), `layer "conv3": weights have shape [256 384 3 3], want [384 256 3 3]`},
		{"fc8 no bias", bad(func(ls []caffe.Layer) []caffe.Layer {
			for i := range ls {
				if ls[i].Name == "fc8" {
					ls[i].Blobs = ls[i].Blobs[:1]
				}
			}
			return ls
		}), `layer "fc8" has 1 blobs, want 2`},
	} {
		if _, err := ToModel(good, c.w, "gender", mean); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}

	if _, err := ToModel(good, w, "age", mean); err == nil || !strings.Contains(err.Error(), "8 classes") {
		t.Errorf("gender net as age: %v", err)
	}
	if _, err := Convert(good, w, Options{Task: "gender", Frozen: []string{"conv9"}}); err == nil || !strings.Contains(err.Error(), "conv9") {
		t.Errorf("freezing an unknown layer: %v", err)
	}
	// Transfer learning: a new 8-way head on the gender net's features.
	m, err := Convert(good, w, Options{Task: "age", Classes: 8, Frozen: []string{"conv1", "conv2"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Config.Classes != 8 || len(m.Weights) != 10 || weightsByName(m)["/net/fc8/weights"].data != nil {
		t.Errorf("new head: classes %d, %d tensors", m.Info.Config.Classes, len(m.Weights))
	}
}

// TestImportedModelSaves checks that an imported model survives agegender's
// own file format.
func TestImportedModelSaves(t *testing.T) {
	def, err := caffe.ParseNetFile(realFile(t, "gender", "deploy.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ToModel(def, roundTrip(t, randomWeights(t, def, 5, 1), nil), "gender", [3]float32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/gender.agm"
	if err := m.Save(path, false); err != nil {
		t.Fatal(err)
	}
	back, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Info.Config != m.Info.Config || back.NumParams() != m.NumParams() || back.NumParams() != 11_411_970 {
		t.Errorf("reloaded %+v with %d params, want %+v with %d", back.Info.Config, back.NumParams(), m.Info.Config, m.NumParams())
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// realFile returns a file of the paper's release (../shared, read-only),
// or skips the test when the shared data is absent.
func realFile(t testing.TB, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{datatest.SharedDir(t, "adience/caffe")}, parts...)...)
}

// TestInputSideFromCrop checks that a train/val definition, which
// declares no input, gives its side by its data layer's crop_size.
func TestInputSideFromCrop(t *testing.T) {
	for _, task := range []string{"age", "gender"} {
		d, err := caffe.ParseNetFile(realFile(t, task, "train_val_test_fold_is_0.prototxt"))
		if err != nil {
			t.Fatal(err)
		}
		if s, err := inputSide(d); s != 227 || err != nil {
			t.Errorf("%s: input side from crop_size %d (%v), want 227", task, s, err)
		}
	}
}
