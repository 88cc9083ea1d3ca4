package agegender_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/models"
)

// An Analyzer made with CropsOnly (no detector loaded in the background)
// answers crops and photos like one made without it.
func TestCropsOnly(t *testing.T) {
	img, _, err := imageio.DecodeFile(filepath.Join("testdata", "face.jpg"), imageio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	plain := newAnalyzer(t, agegender.Options{})
	crops := newAnalyzer(t, agegender.Options{CropsOnly: true})
	for _, an := range []*agegender.Analyzer{crops, plain} {
		if _, err := an.AnalyzeCrop(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	want, err := plain.AnalyzeCrop(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := crops.AnalyzeCrop(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AnalyzeCrop with CropsOnly %+v, without %+v", got, want)
	}
	wantFaces, err := plain.Analyze(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	gotFaces, err := crops.Analyze(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(wantFaces) == 0 || !reflect.DeepEqual(gotFaces, wantFaces) {
		t.Errorf("Analyze with CropsOnly %+v, without %+v", gotFaces, wantFaces)
	}
}

// The built-in models load on another goroutine: an Analyzer closed at
// once waits for them, Info waits for them, and every call answers like
// an Analyzer whose models were loaded before New returned (a model file).
func TestBuiltinLoadsInBackground(t *testing.T) {
	if !models.HasBuiltin(models.Joint) {
		t.Skip("this binary has no built-in joint model")
	}
	img, _, err := imageio.DecodeFile(filepath.Join("testdata", "face.jpg"), imageio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agegender.New(agegender.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a, err = agegender.New(agegender.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if g, _ := a.Info(); g.Config.Classes == 0 {
		t.Errorf("Info of the built-in model: %+v", g)
	}
	got, err := a.Analyze(ctx, img)
	if err != nil || len(got) != 1 {
		t.Fatalf("Analyze: %d faces, %v", len(got), err)
	}
	// The same model read from a file, loaded before New returns.
	path := filepath.Join(t.TempDir(), "joint.agm")
	m, err := models.Load("", models.Joint)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path, true); err != nil { // float16, as built in
		t.Fatal(err)
	}
	f, err := agegender.New(agegender.Options{Backend: "go", Model: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := f.Analyze(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("built-in model loaded in the background: %+v; from a file: %+v", got, want)
	}
}
