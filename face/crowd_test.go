package face

import (
	"image"
	"testing"

	"golang.org/x/image/draw"
)

// TestCrowdIsBounded: a photo with about 500 faces gives at most MaxFaces
// faces (the best-scoring ones), never an unbounded answer.
func TestCrowdIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("detects over a 1.8-megapixel canvas; skipped in -short mode")
	}
	d := newTestDetector(t)
	src := loadImage(t, utkFiles(t, 1, 1)[0])
	const side, cols, rows = 64, 28, 18 // 504 faces
	canvas := image.NewRGBA(image.Rect(0, 0, cols*side, rows*side))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			draw.ApproxBiLinear.Scale(canvas, image.Rect(c*side, r*side, (c+1)*side, (r+1)*side), src, src.Bounds(), draw.Src, nil)
		}
	}
	opt := DefaultOptions()
	opt.Upright = true
	opt.MinSize = 40
	faces, err := d.Detect(canvas, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d faces returned from a canvas of %d", len(faces), cols*rows)
	if len(faces) > opt.MaxFaces || len(faces) < 10 {
		t.Errorf("%d faces, want between 10 and MaxFaces=%d", len(faces), opt.MaxFaces)
	}
	for i := 1; i < len(faces); i++ {
		if faces[i].Score > faces[i-1].Score {
			t.Fatalf("faces not sorted by score at %d", i)
		}
	}
}
