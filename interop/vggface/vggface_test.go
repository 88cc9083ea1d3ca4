package vggface_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/interop/vggface"
	"github.com/agegender/agegender/interop/vggface/vggfacetest"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestMatchesCaffe loads synthetic VGG-Faces (with their deploy
// definitions; vggfacetest.Tiny and one at the released net's 224 px with
// few channels) and checks the graph's pool5 and fc7 on random images
// against a Caffe-semantics forward pass written below (NCHW, BGR minus
// the BGR mean, float64): they agree within 1e-4 of the largest value.
func TestMatchesCaffe(t *testing.T) {
	for _, net := range []vggfacetest.Net{vggfacetest.Tiny, {Channels: [5]int{2, 2, 2, 3, 4}, FC: 8, Side: 224, Seed: 2}} {
		t.Run(fmt.Sprint(net.Side), func(t *testing.T) { matchesCaffe(t, net) })
	}
}

func matchesCaffe(t *testing.T, net vggfacetest.Net) {
	dir := t.TempDir()
	layers, err := vggfacetest.Write(dir, net, true)
	if err != nil {
		t.Fatal(err)
	}
	g, err := vggface.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	geo, err := vggface.GeometryOf(g)
	if err != nil {
		t.Fatal(err)
	}
	if geo.Side != net.Side || !slices.Equal(geo.Pool5, []int{net.Side / 32, net.Side / 32, net.Channels[4]}) || geo.Dim != net.FC {
		t.Errorf("geometry %+v, want side %d, pool5 [%d %d %d], dim %d", geo, net.Side, net.Side/32, net.Side/32, net.Channels[4], net.FC)
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	exec, err := g.NewExec(b, vggface.Input, vggface.Pool5, vggface.FC7)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2
	s := net.Side
	rng := rand.New(rand.NewPCG(3, 3))
	x := make([]float32, n*s*s*3)
	for i := range x {
		x[i] = float32(math.Floor(rng.Float64() * 256))
	}
	res, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, s, s, 3))
	if err != nil {
		t.Fatal(err)
	}
	pool5, fc7 := tensors.MustCopyFlatData[float32](res[0]), tensors.MustCopyFlatData[float32](res[1])
	byName := map[string]caffe.Layer{}
	for _, l := range layers {
		byName[l.Name] = l
	}
	for i := range n {
		wantPool, wantFC := reference(byName, x[i*s*s*3:(i+1)*s*s*3], s)
		// pool5: ours NHWC, the reference CHW.
		h, c := s/32, net.Channels[4]
		got := make([]float64, h*h*c)
		for ch := range c {
			for y := range h {
				for xx := range h {
					got[(ch*h+y)*h+xx] = float64(pool5[i*h*h*c+(y*h+xx)*c+ch])
				}
			}
		}
		compare(t, fmt.Sprintf("image %d pool5", i), got, wantPool)
		gotFC := make([]float64, net.FC)
		positive := 0
		for j := range gotFC {
			gotFC[j] = float64(fc7[i*net.FC+j])
			if wantFC[j] > 0 {
				positive++
			}
		}
		compare(t, fmt.Sprintf("image %d fc7", i), gotFC, wantFC)
		if positive < max(2, net.FC/4) {
			t.Errorf("image %d: only %d of %d fc7 outputs are positive; the comparison is weak", i, positive, net.FC)
		}
	}
}

func compare(t *testing.T, what string, got, want []float64) {
	t.Helper()
	var scale, diff float64
	for i := range want {
		scale = max(scale, math.Abs(want[i]))
		diff = max(diff, math.Abs(got[i]-want[i]))
	}
	t.Logf("%s: max |Δ| %.3g, scale %.3g", what, diff, scale)
	if scale == 0 || diff > 1e-4*scale {
		t.Errorf("%s: max |Δ| %.3g against the Caffe reference (scale %.3g)", what, diff, scale)
	}
}

// reference runs VGG-16 as Caffe does on one image given as HWC RGB
// 0..255: BGR minus VGG-Face's BGR mean, NCHW, 3×3 convolutions with zero
// padding 1, ReLU, 2×2 max pools, inner products on the CHW-flattened
// pool5. It returns pool5 (CHW) and fc7 after its ReLU.
func reference(layers map[string]caffe.Layer, rgb []float32, side int) (pool5, fc7 []float64) {
	c, h := 3, side
	x := make([]float64, 3*side*side)
	for ch := range 3 { // ch in BGR
		for i := range side * side {
			x[ch*side*side+i] = float64(rgb[i*3+2-ch]) - float64(caffe.VGGFaceMeanRGB[2-ch])
		}
	}
	for b, k := range vggface.Blocks {
		for j := range k {
			l := layers[fmt.Sprintf("conv%d_%d", b+1, j+1)]
			w, bias := l.Blobs[0].Data, l.Blobs[1].Data
			co := len(bias)
			y := make([]float64, co*h*h)
			for o := range co {
				for yy := range h {
					for xx := range h {
						sum := float64(bias[o])
						for ci := range c {
							for ky := range 3 {
								iy := yy + ky - 1
								if iy < 0 || iy >= h {
									continue
								}
								for kx := range 3 {
									if ix := xx + kx - 1; ix >= 0 && ix < h {
										sum += float64(w[((o*c+ci)*3+ky)*3+kx]) * x[(ci*h+iy)*h+ix]
									}
								}
							}
						}
						y[(o*h+yy)*h+xx] = max(sum, 0)
					}
				}
			}
			x, c = y, co
		}
		p := make([]float64, c*(h/2)*(h/2))
		for ch := range c {
			for yy := range h / 2 {
				for xx := range h / 2 {
					m := math.Inf(-1)
					for dy := range 2 {
						for dx := range 2 {
							m = max(m, x[(ch*h+2*yy+dy)*h+2*xx+dx])
						}
					}
					p[(ch*(h/2)+yy)*(h/2)+xx] = m
				}
			}
		}
		x, h = p, h/2
	}
	pool5 = x
	for _, name := range []string{"fc6", "fc7"} {
		l := layers[name]
		w, bias := l.Blobs[0].Data, l.Blobs[1].Data
		y := make([]float64, len(bias))
		for o := range y {
			sum := float64(bias[o])
			for i, v := range x {
				sum += float64(w[o*len(x)+i]) * v
			}
			y[o] = max(sum, 0)
		}
		x = y
	}
	return pool5, x
}

// TestLoadErrors checks that bad input is refused with an error naming
// the file and the layer.
func TestLoadErrors(t *testing.T) {
	net := vggfacetest.Tiny
	good := net.Layers()
	write := func(t *testing.T, layers []caffe.Layer, deploy string) string {
		dir := t.TempDir()
		data, err := vggfacetest.Caffemodel(layers)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, vggface.WeightsFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if deploy != "" {
			if err := os.WriteFile(filepath.Join(dir, vggface.DeployFile), []byte(deploy), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	edit := func(f func([]caffe.Layer) []caffe.Layer) []caffe.Layer {
		ls := make([]caffe.Layer, len(good))
		for i, l := range good {
			ls[i] = caffe.Layer{Name: l.Name, Type: l.Type, Blobs: slices.Clone(l.Blobs)}
		}
		return f(ls)
	}
	without := func(name string) []caffe.Layer {
		return edit(func(ls []caffe.Layer) []caffe.Layer {
			return slices.DeleteFunc(ls, func(l caffe.Layer) bool { return l.Name == name })
		})
	}
	reshaped := func(name string, shape []int) []caffe.Layer {
		return edit(func(ls []caffe.Layer) []caffe.Layer {
			for i := range ls {
				if ls[i].Name == name {
					ls[i].Blobs[0].Shape = shape
				}
			}
			return ls
		})
	}
	cases := []struct {
		what   string
		dir    string
		want   []string
		noFile bool
	}{
		{what: "missing fc7", dir: write(t, without("fc7"), ""), want: []string{`no layer "fc7"`}},
		{what: "missing conv3_2", dir: write(t, without("conv3_2"), ""), want: []string{`no layer "conv3_2"`}},
		{what: "conv2_1 of another width", dir: write(t, reshaped("conv2_1", []int{2, 4, 3, 3}), ""), want: []string{`layer "conv2_1"`, "want [Cout, 2, 3, 3]"}},
		{what: "fc6 not square", dir: write(t, reshaped("fc6", []int{32, 16}), ""), want: []string{`layer "fc6"`}},
		{what: "fc7 of another width", dir: write(t, reshaped("fc7", []int{32, 8}), ""), want: []string{`layer "fc7"`}},
		{what: "bias missing", dir: write(t, edit(func(ls []caffe.Layer) []caffe.Layer {
			for i := range ls {
				if ls[i].Name == "conv5_3" {
					ls[i].Blobs = ls[i].Blobs[:1]
				}
			}
			return ls
		}), ""), want: []string{`layer "conv5_3" has 1 blobs`}},
		{what: "deploy of another width", dir: write(t, good, strings.Replace(net.Deploy(), "num_output: 16", "num_output: 32", 1)), want: []string{vggface.DeployFile, `layer "fc6" has 32 outputs`}},
		{what: "deploy of another input", dir: write(t, good, strings.Replace(net.Deploy(), "input_dim: 64", "input_dim: 224", 1)), want: []string{vggface.DeployFile, "input"}},
		{what: "missing folder", dir: filepath.Join(t.TempDir(), "nowhere"), want: []string{"vgg_face_caffe.tar.gz"}},
	}
	// A truncated caffemodel.
	trunc := t.TempDir()
	data, err := vggfacetest.Caffemodel(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trunc, vggface.WeightsFile), data[:len(data)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		what   string
		dir    string
		want   []string
		noFile bool
	}{what: "truncated", dir: trunc, want: []string{"truncated", "after layer"}})
	for _, c := range cases {
		_, err := vggface.Load(c.dir)
		if err == nil {
			t.Errorf("%s: loaded", c.what)
			continue
		}
		t.Logf("%s: %v", c.what, err)
		want := append([]string{c.dir}, c.want...)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.what, err, w)
			}
		}
	}
}

// TestTopology checks Topology's input check and that the graph Load
// returns is the one Topology describes (the form a model file stores).
func TestTopology(t *testing.T) {
	if _, err := vggface.Topology(100); err == nil {
		t.Error("Topology(100) accepted a side that is not a multiple of 32")
	}
	topo, err := vggface.Topology(224)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{`"name":"input"`, `"name":"pool5"`, `"name":"relu7"`, `"name":"fc6/kernel"`, `"size":"224"`} {
		if !strings.Contains(string(topo), n) {
			t.Errorf("topology lacks %s", n)
		}
	}
}
