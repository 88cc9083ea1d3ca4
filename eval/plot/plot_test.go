package plot

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/eval"
	"gonum.org/v1/plot/vg"
)

// checkPNG decodes the PNG at path and checks its size in pixels and that
// it is more than a blank canvas. It also checks that no temporary file
// was left beside it.
func checkPNG(t *testing.T, path string, w, h vg.Length) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	wantW := int(math.Ceil(w.Dots(pngDPI)))
	wantH := int(math.Ceil(h.Dots(pngDPI)))
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s is %dx%d pixels, want %dx%d", path, b.Dx(), b.Dy(), wantW, wantH)
	}
	st, _ := f.Stat()
	if st.Size() < 5000 {
		t.Errorf("%s is only %d bytes", path, st.Size())
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %v, want 0644", path, st.Mode().Perm())
	}
	// Count distinct colours: a drawn plot has many more than a few.
	colors := make(map[[4]uint32]bool)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colors) < 10 {
		t.Errorf("%s has only %d distinct colours", path, len(colors))
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	return img
}

func TestSaveConfusionPNG(t *testing.T) {
	var preds []eval.Prediction
	for c := range ageNames {
		for j := range 5 {
			p := c
			if j == 0 { // one in five predicted one group too old
				p = min(c+1, 7)
			}
			preds = append(preds, eval.Prediction{Label: c, Probs: peaked(8, p)})
		}
	}
	r, err := eval.Evaluate("age", ageNames, true, preds)
	if err != nil {
		t.Fatal(err)
	}
	// Parent directories are created.
	path := filepath.Join(t.TempDir(), "plots", "fold0", "age_confusion.png")
	if err := SaveConfusionPNG(r, path); err != nil {
		t.Fatal(err)
	}
	side := confusionSide(8)
	checkPNG(t, path, side, side)

	// Overwriting an existing file works (rename replaces it).
	g, err := eval.Evaluate("gender", genderNames, false, genderPreds())
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveConfusionPNG(g, path); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, confusionSide(2), confusionSide(2))

	if err := SaveConfusionPNG(eval.Report{}, path); err == nil {
		t.Error("empty report: no error")
	}
	bad := g
	bad.Confusion = [][]int{{1, 2}}
	if err := SaveConfusionPNG(bad, path); err == nil || !strings.Contains(err.Error(), "1 rows for 2 classes") {
		t.Errorf("ragged confusion: error = %v", err)
	}
}

func TestSaveCurvesPNG(t *testing.T) {
	epochs := make([]float64, 30)
	train, val := make([]float64, 30), make([]float64, 30)
	for i := range epochs {
		epochs[i] = float64(i + 1)
		train[i] = 2 * math.Exp(-float64(i)/8)
		val[i] = 2*math.Exp(-float64(i)/10) + 0.2
	}
	steps := make([]float64, 200)
	noisy := make([]float64, 200)
	for i := range steps {
		steps[i] = float64(i) * 0.15
		noisy[i] = 2*math.Exp(-steps[i]/8) + 0.1*math.Sin(float64(i))
	}
	path := filepath.Join(t.TempDir(), "loss.png")
	err := SaveCurvesPNG(path, "age: loss", "epoch", "cross-entropy",
		Curve{Name: "train", X: epochs, Y: train},
		Curve{Name: "validation", X: epochs, Y: val},
		Curve{Name: "train (per step)", X: steps, Y: noisy},
	)
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, curvesWidth, curvesHeight)

	if err := SaveCurvesPNG(path, "t", "x", "y"); err == nil {
		t.Error("no curves: no error")
	}
	if err := SaveCurvesPNG(path, "t", "x", "y", Curve{Name: "c", X: []float64{1, 2}, Y: []float64{1}}); err == nil ||
		!strings.Contains(err.Error(), `curve "c" has 2 x values but 1 y values`) {
		t.Errorf("mismatched curve: error = %v", err)
	}
	if err := SaveCurvesPNG(path, "t", "x", "y", Curve{Name: "e"}); err == nil {
		t.Error("empty curve: no error")
	}
	if err := SaveCurvesPNG(path, "t", "x", "y", Curve{Name: "n", X: []float64{1}, Y: []float64{math.NaN()}}); err == nil {
		t.Error("NaN curve: no error")
	}
}

func TestSaveReliabilityPNG(t *testing.T) {
	var preds []eval.Prediction
	for i := range 300 {
		conf := 0.5 + 0.5*float64(i)/300
		label := 0
		if float64(i%10) >= 10*(conf-0.1) { // over-confident by ~0.1
			label = 1
		}
		preds = append(preds, eval.Prediction{Label: label, Probs: []float32{float32(conf), float32(1 - conf)}})
	}
	bins := eval.ReliabilityBins(preds, 15)
	path := filepath.Join(t.TempDir(), "a", "reliability.png")
	if err := SaveReliabilityPNG(bins, path, "gender"); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, reliabilitySide, reliabilitySide)

	if err := SaveReliabilityPNG(nil, path, "x"); err == nil {
		t.Error("no bins: no error")
	}
	// All-empty bins still give a diagram with the diagonal.
	if err := SaveReliabilityPNG(eval.ReliabilityBins(nil, 10), path, "empty"); err != nil {
		t.Errorf("empty bins: %v", err)
	}
}

func TestSavePNGFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	// A file where a directory should be makes MkdirAll fail.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := SaveReliabilityPNG(eval.ReliabilityBins(genderPreds(), 5), filepath.Join(blocker, "r.png"), "x")
	if err == nil {
		t.Fatal("saving under a regular file: no error")
	}
	// Renaming onto an existing directory fails; the temp file is removed.
	target := filepath.Join(dir, "isdir.png")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveReliabilityPNG(eval.ReliabilityBins(genderPreds(), 5), target, "x"); err == nil {
		t.Fatal("renaming over a directory: no error")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind after failure", e.Name())
		}
	}
}

var genderNames = []string{"male", "female"}

var ageNames = []string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}

// genderPreds is a small binary example: two males (one misclassified)
// and two females.
func genderPreds() []eval.Prediction {
	return []eval.Prediction{
		{Label: 0, Probs: []float32{0.90, 0.10}},
		{Label: 0, Probs: []float32{0.08, 0.92}},
		{Label: 1, Probs: []float32{0.15, 0.85}},
		{Label: 1, Probs: []float32{0.45, 0.55}},
	}
}

// peaked is a k-class probability vector with 0.65 on class c.
func peaked(k, c int) []float32 {
	p := make([]float32, k)
	for i := range p {
		p[i] = 0.35 / float32(k-1)
	}
	p[c] = 0.65
	return p
}
