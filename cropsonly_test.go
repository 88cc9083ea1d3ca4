package agegender_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
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
