package model

import (
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/interop/tfjs"
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
