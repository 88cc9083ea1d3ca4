package model

import (
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/interop/faceapi"
	"github.com/agegender/agegender/interop/tfjs"
	"github.com/agegender/agegender/interop/vggface"
	"github.com/agegender/agegender/interop/vggface/vggfacetest"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	"golang.org/x/image/draw"
)

// TestTrunkInferenceMatchesPlain runs the built-in joint model on real
// faces the way the library does (a Predictor: the trunk built for
// inference, with folded batch norms, clamps and constant weights) and
// with the trunk's plain graph (each TF.js op as written, weights as
// variables), and requires every probability to agree within 1e-4.
func TestTrunkInferenceMatchesPlain(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	names, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(names) < 8 {
		datatest.Missing(t, "fewer than 8 images in %s", dir)
	}
	sort.Strings(names)
	m, err := Load(filepath.Join(datatest.RepoRoot(), "models", "builtin", "gender+age.agm"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Info.Config
	if cfg.Trunk == nil {
		t.Fatal("the built-in joint model has no trunk")
	}
	const n = 4
	size := cfg.Input
	pix := make([]float32, 0, n*size*size*3)
	for i := range n {
		pix = append(pix, facePixels(t, names[i*len(names)/n], size)...)
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	p, err := NewPredictor(b, m, ops.Portable)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fast, err := p.Probs(pix, n)
	if err != nil {
		t.Fatal(err)
	}
	store := mlx.NewStore()
	if err := m.LoadInto(store); err != nil {
		t.Fatal(err)
	}
	exec, err := mlx.NewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
		s = s.In(Scope)
		tr := *cfg.Trunk
		g, err := tr.graph()
		if err != nil {
			panic(err)
		}
		outs, err := g.BuildWith(x.Graph(), map[string]*Node{tr.Input: x}, []string{tr.Output}, tfjs.BuildOptions{
			Scope: s.In(TrunkScope), AsVariables: func(string) bool { return true }})
		if err != nil {
			panic(err)
		}
		f := Reshape(outs[0], n, tr.Dim)
		return Probabilities(cfg, Logits(s, cfg, f), m.Info.Temperature, m.Info.AgeTemperature)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := exec.Exec(tensors.FromFlatDataAndDimensions(pix, n, size, size, 3))
	if err != nil {
		t.Fatal(err)
	}
	plain := tensors.MustCopyFlatData[float32](res[0])
	var maxDiff float64
	for i := range n {
		for j, v := range fast[i] {
			maxDiff = math.Max(maxDiff, math.Abs(float64(v-plain[i*cfg.Classes+j])))
		}
	}
	t.Logf("%d faces: max |Δp| %.3g between the inference and the plain trunk", n, maxDiff)
	if maxDiff > 1e-4 {
		t.Errorf("max |Δp| %.3g > 1e-4 between the inference and the plain trunk", maxDiff)
	}
}

// facePixels decodes a JPEG and resizes it to size×size RGB floats on the
// 0..255 scale, NHWC.
func facePixels(t *testing.T, path string, size int) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	out := make([]float32, 0, size*size*3)
	for i := 0; i < len(dst.Pix); i += 4 {
		out = append(out, float32(dst.Pix[i]), float32(dst.Pix[i+1]), float32(dst.Pix[i+2]))
	}
	return out
}

// TestGearInputScale checks gear's input scale by measurement: its own
// gender output (index 0: male) on 12 men and 12 women of UTKFace aged
// 30–39 must be right on at least 21 faces when they are fed as the trunk
// feeds them (p*Scale+Offset: p/255), and on fewer fed on the 0..255
// scale. (Measured on 32 such faces: 31 right at p/255, 17 at p, where
// almost every face comes out female.)
func TestGearInputScale(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	tr := knownTrunks["gear"].Trunk
	g, err := tfjs.Load(filepath.Join(datatest.Shared(t, "models/tfjs"), "gear.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	exec, err := g.NewExec(b, tr.Input, gearScope+"gender_output/Softmax")
	if err != nil {
		t.Fatal(err)
	}
	var pix []float32
	var male []bool
	for _, sex := range []string{"0", "1"} {
		names, _ := filepath.Glob(filepath.Join(dir, "3?_"+sex+"_*.jpg"))
		if len(names) < 12 {
			datatest.Missing(t, "fewer than 12 images 3?_%s_*.jpg in %s", sex, dir)
		}
		sort.Strings(names)
		for i := range 12 {
			pix = append(pix, facePixels(t, names[i*len(names)/12], tr.Size)...)
			male = append(male, sex == "0")
		}
	}
	right := func(scale, offset float32) int {
		x := make([]float32, len(pix))
		for i, p := range pix {
			x[i] = p*scale + offset
		}
		res, err := exec.Call(tensors.FromFlatDataAndDimensions(x, len(male), tr.Size, tr.Size, 3))
		if err != nil {
			t.Fatal(err)
		}
		p := tensors.MustCopyFlatData[float32](res[0])
		n := 0
		for i, m := range male {
			if (p[2*i] > p[2*i+1]) == m {
				n++
			}
		}
		return n
	}
	got, raw := right(tr.Scale, tr.Offset), right(1, 0)
	t.Logf("gear's gender right on %d of %d faces at the trunk's scale (×%g%+g), %d on the 0..255 scale", got, len(male), tr.Scale, tr.Offset, raw)
	if got < 21 || got <= raw {
		t.Errorf("gear's gender right on %d of %d faces at the trunk's scale, %d at 0..255: the trunk's input scale is wrong", got, len(male), raw)
	}
}

// TestKnownTrunks imports every known trunk from ../shared/models/tfjs and
// checks its description against its graph on two real faces: the output
// is [N, Dim], the Cut activations have CutShape, every Tune prefix names
// weights, and the output computed from the Cut equals the one computed
// from the image (so a stage-2 run that feeds cached Cut activations sees
// the same trunk).
func TestKnownTrunks(t *testing.T) {
	models := datatest.Shared(t, "models/tfjs")
	face := datatest.UTKFace(t)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	for _, name := range TrunkNames() {
		t.Run(name, func(t *testing.T) {
			dir := models
			switch name {
			case FaceAPI:
				dir = faceAPIDir(t)
			case VGGFace: // not in ../shared: a small synthetic net of its shape
				dir = t.TempDir()
				if _, err := vggfacetest.Write(dir, vggfacetest.Tiny, true); err != nil {
					t.Fatal(err)
				}
			}
			tr, weights, g, err := ImportTrunk(dir, name)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Name != name || len(tr.Graph) == 0 || len(weights) == 0 {
				t.Fatalf("import: name %q, %d bytes of graph, %d weights", tr.Name, len(tr.Graph), len(weights))
			}
			for _, p := range tr.Tune {
				n := 0
				for _, w := range weights {
					if strings.Contains(w.Name, "/"+TrunkScope+"/"+tfjs.VariableName(p)) {
						n++
					}
				}
				if n == 0 {
					t.Errorf("Tune prefix %q names no weight", p)
				}
			}
			px := facePixels(t, face, tr.Size)
			flipped := slices.Clone(px) // a second, different image: the face mirrored
			row := tr.Size * 3
			for y := range tr.Size {
				for x := range tr.Size {
					copy(flipped[y*row+x*3:y*row+x*3+3], px[y*row+(tr.Size-1-x)*3:])
				}
			}
			x := append(px, flipped...)
			for i := range x {
				x[i] = x[i]*tr.Scale + tr.Offset
			}
			full, err := g.NewExec(b, tr.Input, tr.Cut, tr.Output)
			if err != nil {
				t.Fatal(err)
			}
			res, err := full.Call(tensors.FromFlatDataAndDimensions(x, 2, tr.Size, tr.Size, 3))
			if err != nil {
				t.Fatal(err)
			}
			if d := res[0].Shape().Dimensions; !slices.Equal(d, append([]int{2}, tr.CutShape...)) {
				t.Errorf("Cut %s has shape %v, want [2 %v]", tr.Cut, d, tr.CutShape)
			}
			want := tensors.MustCopyFlatData[float32](res[1])
			if len(want) != 2*tr.Dim {
				t.Fatalf("output %s has %d values for 2 faces, want 2×%d", tr.Output, len(want), tr.Dim)
			}
			top, err := g.NewExec(b, tr.Cut, tr.Output)
			if err != nil {
				t.Fatal(err)
			}
			res2, err := top.Call(res[0])
			if err != nil {
				t.Fatal(err)
			}
			got := tensors.MustCopyFlatData[float32](res2[0])
			var maxDiff, scale, sum, sq float64
			for i := range want {
				maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
				scale = max(scale, math.Abs(float64(want[i])))
				sum += float64(want[i])
				sq += float64(want[i]) * float64(want[i])
			}
			n := float64(len(want))
			t.Logf("%s: features mean %.3g, rms %.3g, max |x| %.3g", name, sum/n, math.Sqrt(sq/n), scale)
			if maxDiff > 1e-5*scale {
				t.Errorf("output from the Cut differs by %g (scale %g)", maxDiff, scale)
			}
		})
	}
}

// faceAPIDir returns the model folder of face-api's npm package (by default
// in bench/faceapi/node_modules, where bench/faceapi.sh installs it;
// AGEGENDER_FACEAPI names another installed @vladmandic/face-api folder),
// or skips the test when it is not installed.
func faceAPIDir(t *testing.T) string {
	t.Helper()
	pkg := os.Getenv("AGEGENDER_FACEAPI")
	if pkg == "" {
		pkg = filepath.Join(datatest.RepoRoot(), "bench", "faceapi", "node_modules", "@vladmandic", "face-api")
	}
	dir := faceapi.ModelDir(pkg)
	if _, err := os.Stat(filepath.Join(dir, faceapi.ManifestName)); err != nil {
		t.Skipf("face-api's npm package is not installed (%v): run bench/faceapi.sh, or set AGEGENDER_FACEAPI to an installed @vladmandic/face-api folder", err)
	}
	return dir
}

// vggfaceModel imports a synthetic VGG-Face (vggfacetest.Tiny, written to
// a temp folder, which it returns) as a trunk and puts freshly
// initialised joint heads on it: a whole model, as training starts it.
func vggfaceModel(t *testing.T, b compute.Backend) (*Model, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := vggfacetest.Write(dir, vggfacetest.Tiny, true); err != nil {
		t.Fatal(err)
	}
	tr, weights, _, err := ImportTrunk(dir, VGGFace)
	if err != nil {
		t.Fatal(err)
	}
	net := vggfacetest.Tiny
	if tr.Size != net.Side || tr.Dim != net.FC || !slices.Equal(tr.CutShape, []int{2, 2, net.Channels[4]}) {
		t.Errorf("trunk size %d, dim %d, cut %v; want %d, %d, [2 2 %d]", tr.Size, tr.Dim, tr.CutShape, net.Side, net.FC, net.Channels[4])
	}
	if c, ok := tr.Ints["flatten/shape"]; !ok || !slices.Equal(c.Values, []int32{-1, 32}) {
		t.Errorf("int constants %v, want flatten/shape [-1 32]", tr.Ints)
	}
	if len(weights) != 13*2+2*2+1 {
		t.Errorf("%d trunk weights, want 31 (13 convolutions, fc6, fc7, the mean)", len(weights))
	}
	for _, p := range tr.Tune {
		n := 0
		for _, w := range weights {
			if strings.HasPrefix(w.Name, "/"+Scope+"/"+TrunkScope+"/"+tfjs.VariableName(p)) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("Tune prefix %q names %d weights, want 2", p, n)
		}
	}
	cfg := Config{Net: TrunkNet, Trunk: &tr, Input: tr.Size, Classes: JointClasses, Heads: HeadsGenderAge, Seed: 1}
	m := &Model{Info: Info{Config: cfg, Task: data.TaskGenderAge, Spec: prep.Spec{Resize: tr.Size, Crop: tr.Size}}, Weights: weights}
	m.Info.ClassNames = data.TaskGender.ClassNames() // then the ages in years, as transfer.JointClassNames
	for y := range AgeBins {
		m.Info.ClassNames = append(m.Info.ClassNames, fmt.Sprint(y))
	}
	store := mlx.NewStore()
	if err := m.LoadInto(store); err != nil {
		t.Fatal(err)
	}
	exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x *Node) *Node { return Logits(s.In(Scope), cfg, x) })
	exec.MustCall(tensors.FromFlatDataAndDimensions(make([]float32, tr.Size*tr.Size*3), 1, tr.Size, tr.Size, 3))
	have := map[string]bool{}
	for _, w := range weights {
		have[w.Name] = true
	}
	for v := range store.IterVariables() {
		if !have[v.Path()] {
			m.Weights = append(m.Weights, modelfile.Tensor{Name: v.Path(), Dims: v.Shape().Dimensions, Store: modelfile.Float32, F32: tensors.MustCopyFlatData[float32](v.MustValue())})
		}
	}
	return m, dir
}

// TestVGGFaceTrunk checks VGG-Face as a trunk end to end without shared
// data, on the backend $GOMLX_BACKEND names: imported from its Caffe files (a synthetic net of its shape), put
// under heads, saved as one model file (float32 and float16) and loaded
// back, the net's features equal those of interop/vggface's graph of the
// caffemodel, and the loaded model predicts.
func TestVGGFaceTrunk(t *testing.T) {
	b, err := backend.Open("") // $GOMLX_BACKEND: also run on ONNX Runtime (-tags onnx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	t.Logf("backend %s", b.Name())
	m, dir := vggfaceModel(t, b)
	tr := *m.Info.Config.Trunk
	g, err := vggface.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := g.NewExec(b, vggface.Input, vggface.FC7)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	rng := rand.New(rand.NewPCG(5, 5))
	pix := make([]float32, n*tr.Size*tr.Size*3)
	for i := range pix {
		pix[i] = float32(rng.IntN(256))
	}
	x := tensors.FromFlatDataAndDimensions(pix, n, tr.Size, tr.Size, 3)
	res, err := ref.Call(x)
	if err != nil {
		t.Fatal(err)
	}
	want := tensors.MustCopyFlatData[float32](res[0])
	for _, half := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "vggface.agm")
		if err := m.Save(path, half); err != nil {
			t.Fatal(err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if bt := back.Info.Config.Trunk; bt == nil || bt.Name != VGGFace || bt.Size != tr.Size || !slices.Equal(bt.CutShape, tr.CutShape) {
			t.Fatalf("reloaded trunk %+v", bt)
		}
		store := mlx.NewStore()
		if err := back.LoadInto(store); err != nil {
			t.Fatal(err)
		}
		bt := *back.Info.Config.Trunk
		exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
			return bt.build(s.In(Scope).In(TrunkScope), x, true, false, false)
		})
		got := tensors.MustCopyFlatData[float32](exec.MustCall(x)[0])
		var diff, scale float64
		for i := range want {
			diff = max(diff, math.Abs(float64(got[i]-want[i])))
			scale = max(scale, math.Abs(float64(want[i])))
		}
		tol := 1e-5
		if half {
			tol = 2e-2 // float16 weights
		}
		t.Logf("half=%t: max |Δ| %.3g of features up to %.3g", half, diff, scale)
		if scale == 0 || diff > tol*scale {
			t.Errorf("half=%t: the model file's trunk differs from the caffemodel's graph by %.3g (scale %.3g)", half, diff, scale)
		}
		p, err := NewPredictor(b, back, ops.Portable)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := p.Probs(pix, n)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) != n || len(probs[0]) != JointClasses {
			t.Errorf("predictions %d×%d, want %d×%d", len(probs), len(probs[0]), n, JointClasses)
		}
	}
}

// TestVGGFaceTrunkErrors checks the errors of a missing VGG-Face folder
// and of a model file that lacks one of its weights.
func TestVGGFaceTrunkErrors(t *testing.T) {
	_, _, _, err := ImportTrunk(filepath.Join(t.TempDir(), "tfjs"), VGGFace)
	for _, w := range []string{"VGG_FACE.caffemodel", "vgg_face_caffe.tar.gz", "as train --models DIR"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing folder: error %v, want one containing %q", err, w)
		}
	}
	t.Logf("missing folder: %v", err)
	b, err := backend.Open("") // $GOMLX_BACKEND: also run on ONNX Runtime (-tags onnx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	t.Logf("backend %s", b.Name())
	m, _ := vggfaceModel(t, b)
	m.Weights = slices.DeleteFunc(m.Weights, func(w modelfile.Tensor) bool { return strings.HasSuffix(w.Name, tfjs.VariableName("fc7/kernel")) })
	path := filepath.Join(t.TempDir(), "cut.agm")
	if err := m.Save(path, true); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	for _, w := range []string{path, "fc7/kernel"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("model file without fc7: error %v, want one containing %q", err, w)
		}
	}
	t.Logf("model file without fc7: %v", err)
}

// TestCheckTrunkFolder: a folder without the trunk's main file is refused
// with an error naming the file and saying what the folder should be; a
// folder with it passes, without reading it.
func TestCheckTrunkFolder(t *testing.T) {
	dir := t.TempDir()
	for name, want := range map[string]string{
		"faceres": "faceres.json", FaceAPI: "@vladmandic/face-api", VGGFace: "vgg_face_caffe.tar.gz",
	} {
		err := CheckTrunkFolder(dir, name)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("CheckTrunkFolder(empty folder, %s) = %v; want an error naming the folder and %q", name, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "faceres.json"), []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckTrunkFolder(dir, "faceres"); err != nil {
		t.Errorf("CheckTrunkFolder with faceres.json present: %v", err)
	}
	if err := CheckTrunkFolder(dir, "nosuch"); err == nil || !strings.Contains(err.Error(), "known trunks") {
		t.Errorf("CheckTrunkFolder(unknown trunk) = %v; want the list of known trunks", err)
	}
}

// TestTrunkFixedConstantsNotTrained: a trunk built for training as a whole
// (not frozen) trains its weights but not its preprocessing constants
// (Trunk.Fixed: the mean VGG-Face subtracts).
func TestTrunkFixedConstantsNotTrained(t *testing.T) {
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := vggfaceModel(t, b)
	store := mlx.NewStore()
	if err := m.LoadInto(store); err != nil {
		t.Fatal(err)
	}
	tr := *m.Info.Config.Trunk
	exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
		s.Store().SetTraining(x.Graph(), true)
		return tr.build(s.In(Scope).In(TrunkScope), x, false, false, false)
	})
	exec.MustCall(tensors.FromFlatDataAndDimensions(make([]float32, tr.Size*tr.Size*3), 1, tr.Size, tr.Size, 3))
	trainable := map[string]bool{}
	for v := range store.IterVariables() {
		trainable[v.Path()] = v.Trainable
	}
	for name, want := range map[string]bool{"preprocess/mean_rgb": false, "conv1_1/kernel": true, "fc7/bias": true} {
		path := "/" + Scope + "/" + TrunkScope + "/" + tfjs.VariableName(name)
		if got, ok := trainable[path]; !ok || got != want {
			t.Errorf("%s: trainable %t (present %t), want %t", path, got, ok, want)
		}
	}
}
