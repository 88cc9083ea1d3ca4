package face

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/agegender/agegender/backend"
)

func TestFinder(t *testing.T) {
	be, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Finalize()
	for _, bad := range []struct {
		name string
		min  float32
		opt  Options
	}{{"nope", 0, Options{}}, {"blazeface", 1.5, Options{}}, {"pigo", -0.1, Options{}}, {"blazeface", 0, Options{MinSize: 2}}} {
		if _, err := NewFinder(bad.name, be, bad.min, bad.opt); err == nil {
			t.Errorf("NewFinder(%q, min %g, %+v) succeeded", bad.name, bad.min, bad.opt)
		}
	}
	img := loadImage(t, "../testdata/face.jpg")
	for _, name := range []string{"", "blazeface", "pigo"} {
		f, err := NewFinder(name, be, 0, Options{})
		if err != nil {
			t.Fatal(err)
		}
		faces, err := f.Find(img)
		if err != nil || len(faces) != 1 {
			t.Fatalf("%s: %d faces, err %v; want the one face of testdata/face.jpg", f.Name(), len(faces), err)
		}
		if s := faces[0].Score; !(s > 0 && s < 1) {
			t.Errorf("%s: score %v off the 0–1 scale", f.Name(), s)
		}
		if (f.Name() == "blazeface") != (len(faces[0].Landmarks) == NumLandmarks) {
			t.Errorf("%s: %d landmarks", f.Name(), len(faces[0].Landmarks))
		}
		// A threshold above the face's score hides it.
		g, _ := NewFinder(name, be, min(0.999, faces[0].Score+0.01), Options{})
		if more, _ := g.Find(img); len(more) != 0 {
			t.Errorf("%s: minimum score %v above the face's %v still reports it", f.Name(), faces[0].Score+0.01, faces[0].Score)
		}
	}
}

// TestFinderTiles checks that Options.Tiles reaches BlazeFace.
func TestFinderTiles(t *testing.T) {
	be, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Finalize()
	for _, tiles := range []bool{false, true} {
		f, err := NewFinder("blazeface", be, 0, Options{Tiles: tiles})
		if err != nil {
			t.Fatal(err)
		}
		if f.bopt.Tiles != tiles {
			t.Errorf("Options{Tiles: %v} gave BlazeOptions.Tiles %v", tiles, f.bopt.Tiles)
		}
	}
}

// TestFinderMinScoreOnlyDrops: a higher minimum score drops faces under
// it and leaves the faces it keeps exactly as they were (boxes, scores,
// landmarks); it does not re-run detection with fewer candidates.
func TestFinderMinScoreOnlyDrops(t *testing.T) {
	be, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Finalize()
	img := loadImage(t, filepath.Join("..", "testdata", "face.jpg"))
	all, err := NewFinder("blazeface", be, 0, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	want, err := all.Find(img)
	if err != nil || len(want) != 1 {
		t.Fatalf("default threshold: %v, %v; want one face", want, err)
	}
	for _, min := range []float32{want[0].Score - 0.01, want[0].Score + 0.001} {
		f, err := NewFinder("blazeface", be, min, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Find(img)
		if err != nil {
			t.Fatal(err)
		}
		if min > want[0].Score {
			if len(got) != 0 {
				t.Errorf("min score %.3f above the face's %.3f: %d faces", min, want[0].Score, len(got))
			}
			continue
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want[0]) {
			t.Errorf("min score %.3f: %+v, want %+v", min, got, want)
		}
	}
}
