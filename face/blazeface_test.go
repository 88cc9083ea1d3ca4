package face

import (
	"math"
	"testing"

	"github.com/agegender/agegender/backend"
)

func newTestBlazeFace(t testing.TB) *BlazeFace {
	t.Helper()
	be, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Finalize)
	d, err := NewBlazeFace(be)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBlazeFaceProbe(t *testing.T) {
	d := newTestBlazeFace(t)
	for _, f := range append(utkFiles(t, 5, 3000), "../testdata/face.jpg") {
		img := loadImage(t, f)
		faces, err := d.Detect(img, BlazeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %v: %d faces", f, img.Bounds(), len(faces))
		for _, fc := range faces {
			t.Logf("  box %v score %.3f angle %.1f lm %v", fc.Box, fc.Score, fc.Angle*180/math.Pi, fc.Landmarks)
		}
	}
}
